# kind: script
# about: issue 9: #! wait wrapped like the manifests' durations
# expect: '18446744073709552' is too long a duration
#! wait 18446744073709552
