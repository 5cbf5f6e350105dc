# kind: script
# about: in PowerShell a quote inside a bare word opens a string, here never closed
# expect: The string is missing the terminator
Invoke-CsPoolFailOver -PoolFqdn pool01.dal.contoso.com’ -DisasterMode
