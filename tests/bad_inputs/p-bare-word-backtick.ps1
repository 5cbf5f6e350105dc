# kind: script
# about: a backtick escapes the next character in a bare word too
# expect: escape character
Invoke-CsPoolFailOver -PoolFqdn pool01`.dal.contoso.com -DisasterMode
