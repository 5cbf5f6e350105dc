# kind: script
# expect: '13450750887080.00:00:05' is too long a duration
#! wait 13450750887080.00:00:05
