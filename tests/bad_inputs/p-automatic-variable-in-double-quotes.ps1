# kind: script
# about: $_ and $1 are variables in a double-quoted string
# expect: Variables inside double-quoted strings are not supported
Set-CsSite -Identity "Dallas$_"
