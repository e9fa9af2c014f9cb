#!/usr/bin/env bash
# The test command: starts local Kafka and PostgreSQL (idempotently), then runs every test.
# Extra arguments go to `deno test` (e.g. `--filter normalise`).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
eval "$(bash scripts/services.sh start)"
export KAFKA_BROKERS DATABASE_URL
exec deno test --allow-net --allow-read --allow-write=.cache,.artifacts --allow-env --allow-run "$@" tests/
