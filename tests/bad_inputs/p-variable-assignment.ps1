# kind: script
# expect: Variables and assignments such as $pool are not supported
$pool = Get-CsPool -Identity pool01.dal.contoso.com
