#!/usr/bin/env bash
# The test command: starts local Kafka and PostgreSQL (idempotently), then runs every test.
# Extra arguments go to `deno test` (e.g. `--filter normalise`).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# The npm packages exactly as deno.lock pins them (fails if the lock is stale).
deno install --frozen
# Stop at once when the services cannot start: their own error is already on stderr.
if ! services_env=$(bash scripts/services.sh start); then
  echo "test: cannot start the local Kafka and PostgreSQL (see the lines above); no test was run" >&2
  exit 1
fi
eval "$services_env"
export KAFKA_BROKERS DATABASE_URL
# The superuser, for tests only: they create schemas and databases that the pipeline's role owns.
WIKISTREAM_PG_ADMIN_URL=$(bash scripts/services.sh admin-url)
export WIKISTREAM_PG_ADMIN_URL
# All permissions: playwright-core (the browser test) reads os.homedir() and /proc, which Deno
# grants only with --allow-all, and writes a browser profile to the temp dir.
exec deno test --allow-all "$@" tests/
