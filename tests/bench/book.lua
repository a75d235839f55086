-- wrk script: POST /api/v1/appointments, every request a different free slot. Slots are
-- numbered provider-first, then 30-minute steps from 08:00 UTC (20 a day), then days; each
-- wrk thread takes every Nth number, so no two requests ever ask for the same time.
local auth = os.getenv("BENCH_AUTH")
local host = os.getenv("BENCH_HOST")
local providers = {}
for p in string.gmatch(os.getenv("BENCH_PROVIDERS"), "[^,]+") do providers[#providers + 1] = p end
local location = os.getenv("BENCH_LOCATION")
local visit_type = os.getenv("BENCH_VISIT_TYPE")
local patient = os.getenv("BENCH_PATIENT")
local base = tonumber(os.getenv("BENCH_BASE_EPOCH"))
local threads = tonumber(os.getenv("BENCH_THREADS") or "2")

local counter = 0
-- `tid` is a global: wrk's setup() sets it in each thread's own Lua state.
tid = 0
local next_tid = 0

setup = function(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
end

request = function()
  local k = tid + counter * threads
  counter = counter + 1
  local p = providers[(k % #providers) + 1]
  local rest = math.floor(k / #providers)
  local day = math.floor(rest / 20)
  local slot = rest % 20
  local t = base + day * 86400 + slot * 1800
  local body = string.format(
    '{"visit_type_id":"%s","provider_id":"%s","location_id":"%s","patient_id":"%s","starts_at":"%s"}',
    visit_type, p, location, patient, os.date("!%Y-%m-%dT%H:%M:%SZ", t))
  return wrk.format("POST", "/api/v1/appointments",
    { ["Host"] = host, ["Authorization"] = auth, ["Content-Type"] = "application/json" }, body)
end
