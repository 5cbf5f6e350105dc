# kind: script
# expect: control character
Set-CsSite -Identity "Dallas`rRemove-CsSite Seattle"
