#!/usr/bin/env bash
# Installs the peers of `deno task bench:peers` once, into .cache/peers (git-ignored):
#   connect/libs     Kafka Connect 3.9.1 runtime (mvn)
#   connect/plugins  the Debezium JDBC sink 3.1.2.Final + PostgreSQL driver (mvn), minus the
#                    jars that clash with Connect's own (Jackson, slf4j-api, kafka-clients)
#   spark/jars       spark-sql-kafka 4.2.0 and friends (mvn, passed to spark-submit with --jars)
#   venv             a Python venv with pyspark 4.2.0 (pip)
# Prints nothing on stdout; safe to run again (each step is skipped once done).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/bench/peers"
dest="$root/.cache/peers"
log() { printf '%s\n' "$*" >&2; }
mkdir -p "$dest"
for tool in java mvn python3; do
  command -v "$tool" >/dev/null || { log "$tool is required by bench:peers"; exit 1; }
done

fetch() { # pom, folder, extra mvn args...
  local pom=$1 out=$2
  shift 2
  [ -f "$out/.done" ] && return
  log "fetching $(basename "$pom" .pom.xml) jars with mvn (once)"
  rm -rf "$out.tmp"
  mvn -q -B -f "$here/$pom" dependency:copy-dependencies -DoutputDirectory="$out.tmp" \
    -DincludeScope=runtime "$@" >&2
  rm -rf "$out" && mv "$out.tmp" "$out" && touch "$out/.done"
}

fetch connect-runtime.pom.xml "$dest/connect/libs"
fetch debezium-jdbc.pom.xml "$dest/connect/plugins/debezium-jdbc" \
  -DexcludeArtifactIds=jackson-annotations,jackson-core,jackson-databind,slf4j-api,kafka-clients,connect-api
fetch spark-kafka.pom.xml "$dest/spark/jars" -DexcludeTransitive=true

if [ ! -f "$dest/venv/.done" ]; then
  log "installing pyspark 4.2.0 into $dest/venv with pip (once)"
  rm -rf "$dest/venv"
  python3 -m venv "$dest/venv"
  "$dest/venv/bin/pip" install -q "pyspark==4.2.0" >&2
  touch "$dest/venv/.done"
fi
