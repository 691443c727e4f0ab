-- wrk script shared by every scenario of deploy/bench/run.sh.
-- Environment: BENCH_PATH (request path), BENCH_BODY (file with the JSON body), BENCH_KEY (bearer),
--              BENCH_OUT (file the JSON summary is written to in done()),
--              BENCH_KEYS_FILE (optional: one bearer per line, used in turn, one per request, so
--              each request authenticates with a key the proxy has not seen yet).
local path = os.getenv("BENCH_PATH") or "/v1/chat/completions"
local body_file = os.getenv("BENCH_BODY")
local key = os.getenv("BENCH_KEY") or "sk-none"
local out = os.getenv("BENCH_OUT")

local body = ""
if body_file then
  local f = assert(io.open(body_file, "rb"))
  body = f:read("*a")
  f:close()
end

wrk.method = "POST"
wrk.path = path
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. key

local keys_file = os.getenv("BENCH_KEYS_FILE")
local keys = nil
local next_key = 1
if keys_file then
  keys = {}
  for line in io.lines(keys_file) do
    if #line > 0 then keys[#keys + 1] = line end
  end
  assert(#keys > 0, "BENCH_KEYS_FILE " .. keys_file .. " has no keys")
end

local req
function init(args)
  req = wrk.format()
end

function request()
  if keys then
    local k = keys[next_key]
    next_key = next_key % #keys + 1
    return wrk.format(nil, nil, {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. k}, body)
  end
  return req
end

function done(summary, latency, requests)
  local e = summary.errors
  local function us(p) return latency:percentile(p) end
  local s = string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,"rps":%.2f,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.2f,"stdev":%.2f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p99_9":%d}}',
    summary.requests, summary.duration, summary.bytes, summary.requests / (summary.duration / 1e6),
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.stdev, latency.max, us(50), us(90), us(99), us(99.9))
  if out then
    local f = assert(io.open(out, "w"))
    f:write(s, "\n")
    f:close()
  else
    io.write(s, "\n")
  end
end
