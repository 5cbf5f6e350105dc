# kind: script
# expect: Splatting
Invoke-CsPoolFailOver @failoverArgs
