# kind: script
# expect: ';' is not supported
Get-CsPool; Remove-CsPool -Identity pool01.dal.contoso.com
