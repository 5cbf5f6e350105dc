# kind: script
# expect: Missing closing '}'
Get-CsUser -Filter {RegistrarPool -eq "pool01.dal.contoso.com" | Move-CsUser -Target pool01.sea.contoso.com
