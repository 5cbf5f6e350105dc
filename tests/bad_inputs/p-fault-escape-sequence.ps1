# kind: script
# about: the raw escape character is in the file (a directive takes no quoting)
# expect: is not a valid fault target
#! fault down:site/Dal[2Jlas
