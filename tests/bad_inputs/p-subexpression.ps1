# kind: script
# expect: Sub-expressions are not supported
Invoke-CsPoolFailOver -PoolFqdn (Remove-Item C:\ -Recurse) -DisasterMode
