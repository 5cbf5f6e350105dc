# kind: script
# expect: An empty pipe element is not allowed.
Get-CsUser | | Move-CsUser -Target pool01.sea.contoso.com
