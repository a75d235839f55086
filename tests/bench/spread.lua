-- wrk script: each request goes to one of N clinic hosts, chosen at random, so the server must
-- resolve the host and switch role and schema for a different clinic on almost every request.
local n = tonumber(os.getenv("BENCH_TENANTS") or "1")
local base = os.getenv("BENCH_BASE_DOMAIN") or "localhost"
math.randomseed(os.time())
request = function()
  local host = string.format("bench-%05d.%s", math.random(0, n - 1), base)
  return wrk.format("GET", "/", { ["Host"] = host })
end
