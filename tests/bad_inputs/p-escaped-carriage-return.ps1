# kind: script
# xfail: the rehearsal parser reads this differently from PowerShell
# expect: control character
Set-CsSite -Identity "Dallas`rRemove-CsSite Seattle"
