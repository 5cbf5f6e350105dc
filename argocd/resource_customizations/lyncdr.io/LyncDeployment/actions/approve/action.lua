-- Approves the LyncDeployment's plan awaiting approval: sets the annotation lyncdr.io/approve
-- to status.plan.hash. The operator runs a plan only when the annotation equals the current
-- plan's hash, so a plan that changes after this approval needs a new one.
--
-- Argo CD reads the object when the action runs, so without a parameter this approves the
-- plan published at that moment. With the `hash` parameter (Argo CD versions with action
-- parameters), it approves only that plan and fails if the plan has changed since.

if obj.status == nil or obj.status.plan == nil or obj.status.plan.hash == nil or obj.status.plan.hash == "" then
  error("no plan is awaiting approval: status.plan.hash is empty", 0)
end
local hash = obj.status.plan.hash

local awaiting = false
if obj.status.conditions ~= nil then
  for _, c in ipairs(obj.status.conditions) do
    if c.type == "AwaitingApproval" and c.status == "True" then
      awaiting = true
    end
  end
end
if not awaiting then
  error("plan " .. hash .. " is not awaiting approval (condition AwaitingApproval is not True)", 0)
end

if actionParams ~= nil and actionParams["hash"] ~= nil and actionParams["hash"] ~= "" and actionParams["hash"] ~= hash then
  error("the plan awaiting approval is now " .. hash .. ", not " .. actionParams["hash"] .. ": review it and approve again", 0)
end

if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["lyncdr.io/approve"] = hash
return obj
