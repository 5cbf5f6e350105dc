# kind: script
# expect: 'explode' is not a fault action
#! fault explode:site/Dallas
