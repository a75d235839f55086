-- wrk script for GET /api/v1/me as a signed-in patient. BENCH_COOKIE is the Cookie header,
-- BENCH_HOST the clinic's host; BENCH_DELAY_MS (optional) paces each connection, to measure
-- latency at a set fraction of the peak rate.
local cookie = os.getenv("BENCH_COOKIE")
local host = os.getenv("BENCH_HOST")
local pause = tonumber(os.getenv("BENCH_DELAY_MS") or "0")

request = function()
  return wrk.format("GET", "/api/v1/me", { ["Host"] = host, ["Cookie"] = cookie })
end

if pause > 0 then
  delay = function() return pause end
end
