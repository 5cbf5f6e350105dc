# kind: script
# xfail: the rehearsal parser reads this differently from PowerShell
# expect: Splatting
Invoke-CsPoolFailOver @failoverArgs
