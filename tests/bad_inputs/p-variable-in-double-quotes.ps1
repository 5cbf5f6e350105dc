# kind: script
# expect: Variables inside double-quoted strings are not supported
Set-CsSite -Identity "Dallas$(Remove-Item C:\ -Recurse)"
