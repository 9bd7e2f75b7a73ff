#!/usr/bin/env bash
# `npm run bench`: every benchmark with modest durations; prints the tables BENCHMARKS.md quotes.
# Needs RABBITMQ_URL and DATABASE_URL (as for the integration tests) and wrk (Debian package).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${RABBITMQ_URL:?set RABBITMQ_URL}" "${DATABASE_URL:?set DATABASE_URL}"
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }

echo "# event-tracker benchmarks, $(date -u +%FT%TZ), $(nproc) cores, node $(node --version), bun $(npx bun --version)"
node --expose-gc --import tsx bench/limiter.ts
node --import tsx bench/ingest.ts
node --import tsx bench/limiterLoad.ts
node --import tsx bench/consumer.ts
node --import tsx bench/latency.ts
