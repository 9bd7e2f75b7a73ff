#!/usr/bin/env bash
# A curl tour of a running API: each kind of answer, printed with its status line and headers.
# Usage: bash scripts/demo.sh            (against `docker compose up` or `npm run start:api`)
#        API_URL=http://host:port bash scripts/demo.sh
# It ends by using up this client's rate limit, so further /api/ requests get 429 until the
# window moves on (RateLimit-Reset says when).
set -euo pipefail

API_URL=${API_URL:-http://localhost:3000}
EVENT='{"userId":"a1b2c3d4-e5f6-7890-1234-567890abcdef","eventType":"user_login","timestamp":"2023-10-27T10:00:00Z","payload":{"ipAddress":"192.168.1.1","device":"desktop"}}'
# Two events in one request: the first with an id the client chose (a retry with it is stored once),
# the second without, so the API makes one; the answer lists both ids in request order.
BATCH='{"batch":[{"id":"0b7e4c1a-3f2d-4e5b-9a8c-1d2e3f4a5b6c","userId":"a1b2c3d4-e5f6-7890-1234-567890abcdef","eventType":"page_view","timestamp":"2023-10-27T10:00:01Z","payload":{"path":"/pricing"}},{"userId":"a1b2c3d4-e5f6-7890-1234-567890abcdef","eventType":"user_logout","timestamp":"2023-10-27T10:05:00Z","payload":{}}]}'

# Prints a curl command the way you would type it: arguments with shell characters single-quoted.
print_command() {
  printf '$ curl -sS -i'
  local arg
  for arg in "$@"; do
    case $arg in
      *[!A-Za-z0-9_./:=-]*) printf " '%s'" "${arg//\'/\'\\\'\'}" ;;
      *) printf ' %s' "$arg" ;;
    esac
  done
  printf '\n'
}

# show TITLE CURL-ARGS...: prints the title, the command, and the full answer.
show() {
  printf '\n### %s\n' "$1"
  shift
  print_command "$@"
  curl -sS -i "$@"
  printf '\n'
}

show '202: an event is accepted once RabbitMQ has confirmed it' \
  -X POST "$API_URL/api/v1/activities" -H 'Content-Type: application/json' -d "$EVENT"

show '202: a batch, each event its own message, accepted once RabbitMQ has confirmed them all' \
  -X POST "$API_URL/api/v1/activities/batch" -H 'Content-Type: application/json' -d "$BATCH"

show '202: the older snake_case contract, user_id may be an integer' \
  -X POST "$API_URL/api/v1/events/track" -H 'Content-Type: application/json' \
  -d '{"user_id":42,"event_type":"login","timestamp":"2023-10-27T10:00:00+02:00","metadata":{"plan":"pro"}}'

show '400: every problem with the event at once' \
  -X POST "$API_URL/api/v1/activities" -H 'Content-Type: application/json' \
  -d '{"userId":"","eventType":"user_login","timestamp":"2023-02-30T10:00:00Z","payload":[],"extra":1}'

show '415: the body must be JSON, sent as application/json (or text/plain, as sendBeacon sends it)' \
  -X POST "$API_URL/api/v1/activities" -H 'Content-Type: application/xml' -d '<event/>'

show '404: unknown path' "$API_URL/api/v1/nothing-here"

show '405: known path, wrong method (see Allow)' "$API_URL/api/v1/activities"

show 'health: 200 while the broker channel is usable, 503 otherwise' "$API_URL/health"

printf '\n### metrics: Prometheus text format (the first 20 lines)\n'
print_command "$API_URL/metrics"
metrics=$(curl -sS -i "$API_URL/metrics")
# sed reads all of its input, so the pipe never breaks under pipefail.
printf '%s\n' "$metrics" | sed -n '1,20p'

printf '\n### 429: posting until the rate limit refuses (every /api/ request above counted too)\n'
for sent in $(seq 1 1000); do
  status=$(curl -sS -o /dev/null -w '%{http_code}' -X POST "$API_URL/api/v1/activities" -H 'Content-Type: application/json' -d "$EVENT")
  printf '%s ' "$status"
  if [ "$status" = 429 ]; then break; fi
done
printf '\n%s requests sent\n' "$sent"
if [ "$status" != 429 ]; then
  echo 'no 429 after 1000 requests: is RATE_LIMIT_MAX_REQUESTS that high?' >&2
  exit 1
fi

show '429: refused until the oldest request leaves the window (Retry-After, in seconds)' \
  -X POST "$API_URL/api/v1/activities" -H 'Content-Type: application/json' -d "$EVENT"
