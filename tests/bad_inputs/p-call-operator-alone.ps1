# kind: script
# expect: The call operator & must be followed by a command name or path.
& -Force
