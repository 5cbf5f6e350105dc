# kind: script
# about: ’ closes a PowerShell string like ', so the rest is a second command: refused
# expect: ';' is not supported
Set-CsUser -Identity 'sip:alice@contoso.com’; Remove-Item C:\ -Recurse; ‘' -EnterpriseVoiceEnabled $true
