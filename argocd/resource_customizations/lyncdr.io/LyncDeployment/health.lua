-- Argo CD health check for the lyncdr.io kinds (LyncDeployment, PoolPair, UserPlacement,
-- ConferenceContentRestore): one script, copied into each kind's folder (tests/argocd_lua.rs
-- keeps the copies identical).
--
-- It reads the status the operator writes: status.observedGeneration and metav1 conditions
-- Ready / Reconciling / Stalled (kstatus) plus the domain conditions Paused, AwaitingApproval,
-- Conflict, DataAtRisk and DriftDetected. Decision order:
--   being deleted                              -> Progressing
--   no status or no conditions yet             -> Progressing
--   status.observedGeneration != generation    -> Progressing (the spec change is not seen yet)
--   Stalled=True                               -> Degraded    (a person must act)
--   Conflict=True, or Ready=False for Conflict -> Degraded
--   Paused=True                                -> Suspended
--   AwaitingApproval=True                      -> Suspended   (a plan waits for approval)
--   Reconciling=True                           -> Progressing (a plan is running)
--   Ready=True                                 -> Healthy
--   Ready=False/Unknown or missing             -> Progressing
--
-- Argo CD runs custom checks without Lua's string library, so this uses only the base and
-- table functions.

local function find_condition(conditions, condition_type)
  for _, c in ipairs(conditions) do
    if c.type == condition_type then
      return c
    end
  end
  return nil
end

local function is_true(c)
  return c ~= nil and c.status == "True"
end

-- "Reason: message" of a condition, or the fallback when it says nothing.
local function explain(c, fallback)
  if c == nil then
    return fallback
  end
  local reason = c.reason
  local message = c.message
  if reason ~= nil and reason ~= "" and message ~= nil and message ~= "" then
    return reason .. ": " .. message
  end
  if message ~= nil and message ~= "" then
    return message
  end
  if reason ~= nil and reason ~= "" then
    return reason
  end
  return fallback
end

local function health()
  local status = obj.status
  if obj.metadata.deletionTimestamp ~= nil then
    return { status = "Progressing", message = "Being deleted: waiting for lyncdr to release its lyncdr.io/cleanup finalizer" }
  end
  if status == nil or status.conditions == nil or #status.conditions == 0 then
    return { status = "Progressing", message = "Waiting for lyncdr to report status" }
  end
  local generation = obj.metadata.generation
  if status.observedGeneration ~= nil and generation ~= nil and status.observedGeneration ~= generation then
    return {
      status = "Progressing",
      message = "Waiting for lyncdr to observe generation " .. generation .. " (status is for generation " .. status.observedGeneration .. ")",
    }
  end

  local conditions = status.conditions
  local ready = find_condition(conditions, "Ready")

  local stalled = find_condition(conditions, "Stalled")
  if is_true(stalled) then
    return { status = "Degraded", message = "Stalled: " .. explain(stalled, "a person must act") }
  end

  local conflict = find_condition(conditions, "Conflict")
  if is_true(conflict) then
    return { status = "Degraded", message = "Conflict: " .. explain(conflict, "conflicts with another resource") }
  end
  if ready ~= nil and ready.status == "False" and ready.reason == "Conflict" then
    return { status = "Degraded", message = explain(ready, "Conflict") }
  end

  local paused = find_condition(conditions, "Paused")
  if is_true(paused) then
    return { status = "Suspended", message = "Paused: " .. explain(paused, "reconciliation is paused") }
  end

  local plan = status.plan
  local awaiting = find_condition(conditions, "AwaitingApproval")
  if is_true(awaiting) then
    local message = explain(awaiting, "waiting for approval")
    if plan ~= nil and plan.hash ~= nil and plan.hash ~= "" then
      message = "Awaiting approval of plan " .. plan.hash .. ": " .. message
    else
      message = "Awaiting approval: " .. message
    end
    return { status = "Suspended", message = message }
  end

  local reconciling = find_condition(conditions, "Reconciling")
  if is_true(reconciling) then
    local message = explain(reconciling, "Reconciling")
    if plan ~= nil and plan.progress ~= nil and plan.progress ~= "" then
      message = message .. " (plan " .. plan.progress .. " steps)"
    end
    return { status = "Progressing", message = message }
  end

  if ready == nil then
    return { status = "Progressing", message = "Waiting for the Ready condition" }
  end
  if ready.status == "True" then
    local message = explain(ready, "Ready")
    local at_risk = find_condition(conditions, "DataAtRisk")
    if is_true(at_risk) then
      message = message .. "; data at risk: " .. explain(at_risk, "changes not yet replicated")
    end
    local drift = find_condition(conditions, "DriftDetected")
    if is_true(drift) then
      message = message .. "; drift: " .. explain(drift, "the deployment differs from the spec")
    end
    return { status = "Healthy", message = message }
  end
  return { status = "Progressing", message = "Not ready: " .. explain(ready, ready.status) }
end

return health()
