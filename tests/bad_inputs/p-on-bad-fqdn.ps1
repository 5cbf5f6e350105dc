# kind: script
# expect: 'pool01’.dal.contoso.com' is not a valid FQDN
#! on pool01’.dal.contoso.com
