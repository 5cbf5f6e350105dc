-- Argo CD resource actions offered on a LyncDeployment:
--   approve  approves the plan awaiting approval (policy.approval: Manual) by setting the
--            annotation lyncdr.io/approve to its hash; offered only while AwaitingApproval=True
--            and status.plan.hash is not approved yet;
--   pause    sets lyncdr.io/paused: "true" (nothing is executed; observation goes on);
--   resume   removes lyncdr.io/paused.
-- Only base and table functions (Argo CD runs actions without Lua's string library).

local actions = {}

local annotations = obj.metadata.annotations
if annotations == nil then
  annotations = {}
end

local awaiting = false
local hash = nil
if obj.status ~= nil then
  if obj.status.conditions ~= nil then
    for _, c in ipairs(obj.status.conditions) do
      if c.type == "AwaitingApproval" and c.status == "True" then
        awaiting = true
      end
    end
  end
  if obj.status.plan ~= nil and obj.status.plan.hash ~= nil and obj.status.plan.hash ~= "" then
    hash = obj.status.plan.hash
  end
end

local approvable = awaiting and hash ~= nil and annotations["lyncdr.io/approve"] ~= hash
local approve = {
  ["disabled"] = not approvable,
  ["displayName"] = "Approve plan",
  ["iconClass"] = "fa fa-fw fa-check",
}
if approvable then
  -- Argo CD versions with action parameters show the hash being approved (prefilled); the
  -- action refuses a hash that is no longer the plan's. Older versions ignore this.
  approve["params"] = { { ["name"] = "hash", ["default"] = hash } }
end
actions["approve"] = approve

local paused = annotations["lyncdr.io/paused"] == "true"
actions["pause"] = { ["disabled"] = paused, ["displayName"] = "Pause", ["iconClass"] = "fa fa-fw fa-pause" }
actions["resume"] = { ["disabled"] = not paused, ["displayName"] = "Resume", ["iconClass"] = "fa fa-fw fa-play" }

return actions
