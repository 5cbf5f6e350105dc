# kind: script
# about: PowerShell expands $suffix inside a bare word
# expect: Variables such as $suffix are not supported
Invoke-CsPoolFailOver -PoolFqdn pool01$suffix.dal.contoso.com -DisasterMode
