# kind: script
# about: PowerShell reads one argument `alice -Target pool01.dal.contoso.com`, not two parameters
# expect: The string is missing the terminator
Move-CsUser -Identity sip:alice@contoso.com’ -Target pool01.sea.contoso.com’ ’
