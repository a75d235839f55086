-- wrk script: GET BENCH_PATH on the clinic host BENCH_HOST as a signed-in person (the
-- session cookie in BENCH_COOKIE), as a browser asks for a page.
local cookie = os.getenv("BENCH_COOKIE")
local host = os.getenv("BENCH_HOST")
local path = os.getenv("BENCH_PATH")

request = function()
  return wrk.format("GET", path, { ["Host"] = host, ["Cookie"] = cookie })
end
