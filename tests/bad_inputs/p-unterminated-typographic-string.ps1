# kind: script
# expect: The string is missing the terminator: \".
Set-CsSite -Identity “Dallas -FederationRoute EdgeServer:edge01.sea.contoso.com
