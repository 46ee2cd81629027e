-- wrk script: many distinct identifiers, one per request (bench/load.py runs it).
--
--   wrk ... -s bench/ids.lua <url> -- pattern <format> <lo> <hi> <order> <threads>
--   wrk ... -s bench/ids.lua <url> -- file <paths-file> <order> <threads>
--
-- pattern: paths are string.format(format, n) for n in lo..hi (e.g. /api/handles/88.168.1/B%07d);
-- file: one path per line. order "random" picks one at random per request; "seq" walks the
-- set in order, thread t taking items t, t+threads, ... (a warm-up that touches every item).
-- done() prints one line "WRKJSON {...}" with counts and latency percentiles in microseconds.

local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end

local mode, fmt, lo, hi, order, threads
local paths = {}
local next_index

function init(args)
  mode = args[1]
  if mode == "file" then
    for line in io.lines(args[2]) do
      if #line > 0 then paths[#paths + 1] = line end
    end
    lo, hi = 1, #paths
    order, threads = args[3], tonumber(args[4])
  else
    fmt, lo, hi = args[2], tonumber(args[3]), tonumber(args[4])
    order, threads = args[5], tonumber(args[6])
  end
  math.randomseed(os.time() * 1000 + tid * 7919)
  next_index = lo + tid
end

local function path_of(n)
  if mode == "file" then return paths[n] end
  return string.format(fmt, n)
end

function request()
  local n
  if order == "seq" then
    n = next_index
    next_index = next_index + threads
    if next_index > hi then next_index = lo + tid end
  else
    n = math.random(lo, hi)
  end
  return wrk.format("GET", path_of(n))
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
