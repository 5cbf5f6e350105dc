# kind: script
# about: `0 is NUL in a double-quoted string, not the digit 0
# expect: control character
Set-CsSite -Identity "Dallas`0"
