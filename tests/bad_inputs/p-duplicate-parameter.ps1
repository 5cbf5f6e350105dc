# kind: script
# expect: parameter 'poolfqdn' is specified more than once
Invoke-CsPoolFailOver -PoolFqdn pool01.sea.contoso.com -poolfqdn pool01.dal.contoso.com -DisasterMode
