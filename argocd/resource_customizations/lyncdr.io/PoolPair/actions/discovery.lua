-- Argo CD resource action offered on a PoolPair:
--   approve-failback  after an automatic failover, lets the pool's users go back home
--                     (annotation lyncdr.io/approve-failback: "true"); offered while the pair
--                     waits for that approval (AwaitingApproval=True) and it is not given yet.
-- Only base and table functions (Argo CD runs actions without Lua's string library).

local actions = {}

local approved = false
if obj.metadata.annotations ~= nil then
  approved = obj.metadata.annotations["lyncdr.io/approve-failback"] == "true"
end

local awaiting = false
if obj.status ~= nil and obj.status.conditions ~= nil then
  for _, c in ipairs(obj.status.conditions) do
    if c.type == "AwaitingApproval" and c.status == "True" then
      awaiting = true
    end
  end
end

actions["approve-failback"] = {
  ["disabled"] = approved or not awaiting,
  ["displayName"] = "Approve failback",
  ["iconClass"] = "fa fa-fw fa-undo",
}
return actions
