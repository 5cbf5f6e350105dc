# kind: script
# expect: #! wait 8d: at most 7d at once
#! wait 8d
