-- wrk script: GET BENCH_PATH on the clinic host BENCH_HOST with an API bearer token.
local auth = os.getenv("BENCH_AUTH")
local host = os.getenv("BENCH_HOST")
local path = os.getenv("BENCH_PATH")

request = function()
  return wrk.format("GET", path, { ["Host"] = host, ["Authorization"] = auth })
end
