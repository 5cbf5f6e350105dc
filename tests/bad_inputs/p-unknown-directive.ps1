# kind: script
# expect: unknown directive
#! exec Remove-Item C:\ -Recurse
