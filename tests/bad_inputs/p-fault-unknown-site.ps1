# kind: script
# expect: site/Atlantis does not exist in this deployment
#! fault down:site/Atlantis
