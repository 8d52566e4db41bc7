-- POST /ask with a distinct question on every request (no cache can help).
local questions = {}
for line in io.lines(os.getenv("CITEQA_BENCH_QUESTIONS")) do questions[#questions + 1] = line end
local counter = 0
local threads = {}
function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end
function request()
  counter = counter + 1
  local q = questions[(counter % #questions) + 1]
  local body = '{"question": "' .. q .. ' (' .. id .. '-' .. counter .. ')", "k": 5}'
  return wrk.format("POST", "/ask", {["Content-Type"] = "application/json"}, body)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('CITEQA_RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, "connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
