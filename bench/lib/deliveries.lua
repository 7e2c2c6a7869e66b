-- wrk script: POSTs signed push deliveries from a pool file (one "signature<TAB>body" per line), each request with a
-- delivery id no other request in the benchmark uses (run nonce + thread + counter). Prints a JSON summary at the end.
--   wrk -s bench/lib/deliveries.lua ... URL -- POOL_FILE NONCE
local threads = {}
local pool_file, nonce

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

local sigs, bodies, n, i, tid, prefix = {}, {}, 0, 0, 0, ""

function init(args)
  pool_file, nonce = args[1], args[2]
  for line in io.lines(pool_file) do
    local tab = string.find(line, "\t", 1, true)
    n = n + 1
    sigs[n] = string.sub(line, 1, tab - 1)
    bodies[n] = string.sub(line, tab + 1)
  end
  tid = wrk.thread:get("tid")
  prefix = nonce .. "-" .. tid .. "-"
end

function request()
  i = i + 1
  local k = (i % n) + 1
  return wrk.format("POST", "/webhooks/github", {
    ["Content-Type"] = "application/json",
    ["X-GitHub-Event"] = "push",
    ["X-GitHub-Delivery"] = prefix .. i,
    ["X-Hub-Signature-256"] = sigs[k],
    ["User-Agent"] = "GitHub-Hookshot/bench",
  }, bodies[k])
end

function done(summary, latency, requests)
  io.write(string.format('WRK_JSON {"requests":%d,"duration_us":%d,"non2xx":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, latency:percentile(50), latency:percentile(99)))
end
