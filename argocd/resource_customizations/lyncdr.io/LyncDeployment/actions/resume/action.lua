-- Resumes a paused LyncDeployment: removes the annotation lyncdr.io/paused.
if obj.metadata.annotations ~= nil then
  obj.metadata.annotations["lyncdr.io/paused"] = nil
  -- An empty table would reach Argo CD as an empty list, which it replaces with the old
  -- annotations (the pause would stay): drop the field instead.
  if next(obj.metadata.annotations) == nil then
    obj.metadata.annotations = nil
  end
end
return obj
