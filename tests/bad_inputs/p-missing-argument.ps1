# kind: script
# expect: Missing an argument for parameter 'PoolFqdn'
Invoke-CsPoolFailOver -PoolFqdn -DisasterMode
