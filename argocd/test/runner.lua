-- Runs lyncdr's Argo CD health checks and resource actions against their fixtures, the way
-- Argo CD runs them: the script is loaded as a chunk with the resource as the global `obj`
-- (and the action parameters as `actionParams`), and its return value is checked.
--
--   lua5.4 argocd/test/runner.lua SUITE.lua
--
-- SUITE.lua returns a list of cases, written by tests/argocd_lua.rs from the YAML of
-- health_test.yaml / action_test.yaml and their testdata (Lua cannot read YAML):
--   { kind = "health",    name = ..., script = "path/health.lua",    obj = {...}, expected = { status = ..., message = ... } }
--   { kind = "discovery", name = ..., script = "path/discovery.lua", obj = {...}, expected = { { name = ..., disabled = ..., ... }, ... } }
--   { kind = "action",    name = ..., script = "path/action.lua",    obj = {...}, params = {...} or nil,
--     expected = {...} (the object the action returns) or expected_error = "text the error contains" }
--
-- The sandbox mirrors Argo CD's: the base functions, `table`, and a safe `os` (time, date, clock),
-- but no `string`, `math` or `io` library, and string methods (s:sub(...)) fail, as they do in
-- Argo CD, which runs these scripts without Lua's standard string library.
-- Prints one line per case and closes with "lua: N passed, M failed"; exits 1 on any failure.

local suite_path = arg[1]
if suite_path == nil then
  io.stderr:write("usage: lua5.4 runner.lua SUITE.lua\n")
  os.exit(2)
end
local cases = dofile(suite_path)

-- Deep copy, so a script that modifies obj cannot leak into another case.
local function copy(v)
  if type(v) ~= "table" then
    return v
  end
  local t = {}
  for k, x in pairs(v) do
    t[k] = copy(x)
  end
  return t
end

local function sandbox(obj, params)
  return {
    obj = obj,
    actionParams = params,
    assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs, pcall = pcall,
    print = print, rawequal = rawequal, rawget = rawget, rawlen = rawlen, rawset = rawset,
    select = select, tonumber = tonumber, tostring = tostring, type = type,
    table = { concat = table.concat, insert = table.insert, remove = table.remove, sort = table.sort },
    os = { time = os.time, date = os.date, clock = os.clock },
  }
end

local function read(path)
  local f, err = io.open(path, "r")
  if f == nil then
    error("cannot read " .. path .. ": " .. tostring(err), 0)
  end
  local text = f:read("a")
  f:close()
  return text
end

-- Runs a script; returns ok, result-or-error.
local function run(script, obj, params)
  local chunk, err = load(read(script), "@" .. script, "t", sandbox(copy(obj), copy(params)))
  if chunk == nil then
    return false, "does not compile: " .. err
  end
  local string_meta = getmetatable("")
  local string_index = string_meta.__index
  string_meta.__index = nil
  local ok, result = pcall(chunk)
  string_meta.__index = string_index
  return ok, result
end

-- A readable, stable rendering of a value, for failure messages.
local function show(v, indent)
  indent = indent or ""
  if type(v) == "string" then
    return string.format("%q", v)
  end
  if type(v) ~= "table" then
    return tostring(v)
  end
  local keys = {}
  for k in pairs(v) do
    keys[#keys + 1] = k
  end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local parts = {}
  for _, k in ipairs(keys) do
    parts[#parts + 1] = indent .. "  " .. tostring(k) .. " = " .. show(v[k], indent .. "  ")
  end
  if #parts == 0 then
    return "{}"
  end
  return "{\n" .. table.concat(parts, ",\n") .. "\n" .. indent .. "}"
end

-- Deep equality; returns nil when equal, else the path of the first difference. An empty table
-- equals a missing value, as Argo CD treats an empty Lua table (empty list or empty map).
local function is_empty(v)
  return v == nil or (type(v) == "table" and next(v) == nil)
end

local function diff(expected, actual, path)
  if is_empty(expected) and is_empty(actual) then
    return nil
  end
  if type(expected) ~= type(actual) then
    return path .. ": expected " .. show(expected) .. ", got " .. show(actual)
  end
  if type(expected) ~= "table" then
    if expected ~= actual then
      return path .. ": expected " .. show(expected) .. ", got " .. show(actual)
    end
    return nil
  end
  local keys = {}
  for k in pairs(expected) do
    keys[k] = true
  end
  for k in pairs(actual) do
    keys[k] = true
  end
  local sorted = {}
  for k in pairs(keys) do
    sorted[#sorted + 1] = k
  end
  table.sort(sorted, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(sorted) do
    local d = diff(expected[k], actual[k], path .. "." .. tostring(k))
    if d ~= nil then
      return d
    end
  end
  return nil
end

local valid_health = { Healthy = true, Progressing = true, Degraded = true, Suspended = true, Missing = true, Unknown = true }

-- Each checker returns nil on success, else a message.
local checks = {}

function checks.health(case)
  local ok, result = run(case.script, case.obj)
  if not ok then
    return "error: " .. tostring(result)
  end
  if type(result) ~= "table" then
    return "returned " .. type(result) .. ", not a table"
  end
  if not valid_health[result.status] then
    return "invalid health status " .. show(result.status)
  end
  if result.status ~= case.expected.status or result.message ~= case.expected.message then
    return "expected " .. case.expected.status .. " " .. show(case.expected.message)
      .. "\n         got " .. tostring(result.status) .. " " .. show(result.message)
  end
  return nil
end

function checks.discovery(case)
  local ok, result = run(case.script, case.obj)
  if not ok then
    return "error: " .. tostring(result)
  end
  if type(result) ~= "table" then
    return "returned " .. type(result) .. ", not a table"
  end
  -- Argo CD: each key is an action; `disabled` defaults to false.
  local got = {}
  for name, props in pairs(result) do
    local a = copy(props)
    a.name = name
    if a.disabled == nil then
      a.disabled = false
    end
    got[name] = a
  end
  local want = {}
  for _, a in ipairs(case.expected) do
    local e = copy(a)
    if e.disabled == nil then
      e.disabled = false
    end
    want[e.name] = e
  end
  return diff(want, got, "actions")
end

function checks.action(case)
  local ok, result = run(case.script, case.obj, case.params)
  if case.expected_error ~= nil then
    if ok then
      return "expected an error containing " .. show(case.expected_error) .. ", but the action succeeded"
    end
    if string.find(tostring(result), case.expected_error, 1, true) == nil then
      return "expected an error containing " .. show(case.expected_error) .. ", got " .. show(tostring(result))
    end
    return nil
  end
  if not ok then
    return "error: " .. tostring(result)
  end
  if type(result) ~= "table" then
    return "returned " .. type(result) .. ", not a table"
  end
  return diff(case.expected, result, "obj")
end

local passed, failed = 0, 0
for _, case in ipairs(cases) do
  local check = checks[case.kind]
  local problem
  if check == nil then
    problem = "unknown case kind " .. show(case.kind)
  else
    problem = check(case)
  end
  if problem == nil then
    passed = passed + 1
    print("ok    " .. case.name)
  else
    failed = failed + 1
    print("FAIL  " .. case.name .. "\n      " .. problem)
  end
end
print(string.format("lua: %d passed, %d failed", passed, failed))
os.exit(failed == 0 and 0 or 1)
