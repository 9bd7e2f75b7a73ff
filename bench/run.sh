#!/usr/bin/env bash
# `npm run bench`: every benchmark with modest durations; prints the tables BENCHMARKS.md quotes.
# Needs RABBITMQ_URL and DATABASE_URL (as for the integration tests), wrk and redis-server (Debian packages).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${RABBITMQ_URL:?set RABBITMQ_URL}" "${DATABASE_URL:?set DATABASE_URL}"
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "redis-server is not installed (apt-get install redis-server)" >&2; exit 1; }

# The peers (Fastify, Express) and the pinned Node 26 have lockfiles of their own, outside the product's tree.
npm ci --prefix bench/peers --ignore-scripts --no-audit --no-fund
npm ci --prefix tests/node26 --ignore-scripts --no-audit --no-fund

echo "# event-tracker benchmarks, $(date -u +%FT%TZ), $(nproc) cores, node $(node --version), bun $(npx bun --version)"
node --import tsx bench/sideBySide.ts
node --expose-gc --import tsx bench/limiter.ts
node --import tsx bench/ingest.ts
node --import tsx bench/redisRoundTrip.ts
node --import tsx bench/batch.ts
node --import tsx bench/limiterLoad.ts
node --import tsx bench/consumer.ts
node --import tsx bench/latency.ts
node --import tsx bench/quorumQueue.ts
node --import tsx bench/worstCase.ts
# A three-node cluster of its own (tests/support/rabbitCluster.ts, README "The cluster suite") when RABBITMQ_CLUSTER_URL names one.
if [ -n "${RABBITMQ_CLUSTER_URL:-}" ]; then
  node --import tsx bench/cluster.ts
  node --import tsx bench/partitions.ts
else
  echo "bench/cluster.ts and bench/partitions.ts skipped: RABBITMQ_CLUSTER_URL unset"
fi
