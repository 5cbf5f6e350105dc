-- Pauses the LyncDeployment: lyncdr.io/paused: "true". The operator keeps observing and
-- planning but executes nothing (condition Paused=True) until resumed. A step already running
-- finishes; the next one does not start.
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["lyncdr.io/paused"] = "true"
return obj
