# kind: script
# about: the first line is refused, the second too: each line stands alone
# expect: ';' is not supported
# expect: The string is missing the terminator
Invoke-CsManagementServerFailover -Force; Invoke-CsPoolFailOver -PoolFqdn pool01.dal.contoso.com -DisasterMode
Invoke-CsPoolFailOver -PoolFqdn 'pool01.dal.contoso.com -DisasterMode
