-- Approves the way back after an automatic failover: lyncdr.io/approve-failback: "true". The
-- operator then fails the pool back (with the usual ordering and checks) once it is healthy.
-- Failing back by a spec change (a git commit) works too and needs no annotation.
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["lyncdr.io/approve-failback"] = "true"
return obj
