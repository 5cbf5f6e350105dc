# kind: script
# expect: ';' is not supported
Set-CsSite -Identity "Dallas”; Remove-CsSite Seattle; “"
