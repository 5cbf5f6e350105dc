# kind: script
# expect: The string is missing the terminator: '.
Invoke-CsPoolFailOver -PoolFqdn 'pool01.dal.contoso.com -DisasterMode
