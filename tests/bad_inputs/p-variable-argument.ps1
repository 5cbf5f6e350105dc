# kind: script
# expect: Variables such as $env:COMPUTERNAME are not supported
Invoke-CsPoolFailOver -PoolFqdn $env:COMPUTERNAME -DisasterMode
