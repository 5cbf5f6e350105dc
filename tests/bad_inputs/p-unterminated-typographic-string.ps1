# kind: script
# xfail: expectation to check: the message is JSON-escaped on standard output
# expect: The string is missing the terminator: ".
Set-CsSite -Identity “Dallas -FederationRoute EdgeServer:edge01.sea.contoso.com
