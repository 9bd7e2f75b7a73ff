-- wrk script: POSTs one realistic event per request (or the body in the file WRK_BODY_FILE names,
-- such as a batch) and prints a JSON summary line at the end.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"userId":"a1b2c3d4-e5f6-7890-1234-567890abcdef","eventType":"user_login","timestamp":"2023-10-27T10:00:00Z","payload":{"ipAddress":"192.168.1.1","device":"desktop","browser":"Chrome"}}'
local body_file = os.getenv("WRK_BODY_FILE")
if body_file then
  local file = assert(io.open(body_file, "rb"))
  wrk.body = file:read("*a")
  file:close()
end

done = function(summary, latency, requests)
  -- summary.errors.status counts answers outside 2xx/3xx (429s, 503s): they must stay 0.
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"non2xx":%d,"socket_errors":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
