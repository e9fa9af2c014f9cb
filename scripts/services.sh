#!/usr/bin/env bash
# Starts (idempotently) or stops a local Apache Kafka (KRaft, one node) and a throwaway PostgreSQL
# cluster on loopback, for development and tests. Data lives in .cache/services (git-ignored).
#   scripts/services.sh start   # prints `export KAFKA_BROKERS=...` and `export DATABASE_URL=...`
#   scripts/services.sh stop
#   scripts/services.sh env     # prints the settings only
# Ports: WIKISTREAM_KAFKA_PORT (19092; the controller uses +1), WIKISTREAM_PG_PORT (15432).
# WIKISTREAM_SERVICES_DIR (.cache/services) holds their data: a test that stops and restarts
# brokers can run its own pair on other ports and another folder.
# Optional, for tests of secure connections (unset: the plain pair above):
#   WIKISTREAM_KAFKA_EXTRA_PROPS  a file appended to server.properties (later keys win: extra
#                                 listeners such as SSL or SASL_SSL, their keystores and JAAS)
#   WIKISTREAM_KAFKA_SCRAM        SCRAM credentials created when the storage is formatted,
#                                 space-separated, e.g. 'SCRAM-SHA-256=[name=u,password=p]'
#   WIKISTREAM_PG_SSL_DIR         a folder with server.crt and server.key: PostgreSQL runs ssl=on
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache="$root/.cache"
state=${WIKISTREAM_SERVICES_DIR:-$cache/services}
kafka_port=${WIKISTREAM_KAFKA_PORT:-19092}
controller_port=$((kafka_port + 1))
pg_port=${WIKISTREAM_PG_PORT:-15432}
kafka_dir="$state/kafka"
pg_dir="$state/pg"

log() { printf '%s\n' "$*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

print_env() {
  echo "export KAFKA_BROKERS=127.0.0.1:$kafka_port"
  echo "export DATABASE_URL=postgres://wikistream@127.0.0.1:$pg_port/wiki_data"
}

# --- Kafka --------------------------------------------------------------------------------------

kafka_libs() {
  local libs="$cache/kafka/libs"
  if [ ! -f "$libs/kafka_2.13-3.9.1.jar" ]; then
    command -v mvn >/dev/null || { log "mvn is required to fetch the Kafka jars"; exit 1; }
    command -v java >/dev/null || { log "java is required to run Kafka"; exit 1; }
    log "fetching Apache Kafka 3.9.1 jars with mvn (once)"
    mvn -q -B -f "$root/scripts/kafka/pom.xml" dependency:copy-dependencies \
      -DoutputDirectory="$libs" -DincludeScope=runtime >&2
  fi
  echo "$libs"
}

kafka_running() { [ -f "$kafka_dir/pid" ] && kill -0 "$(cat "$kafka_dir/pid")" 2>/dev/null; }

start_kafka() {
  if kafka_running && port_open "$kafka_port"; then return; fi
  local libs
  libs=$(kafka_libs)
  mkdir -p "$kafka_dir"
  cat >"$kafka_dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$kafka_port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$kafka_port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$kafka_dir/data
num.partitions=3
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=5
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=5
group.initial.rebalance.delay.ms=0
log.segment.bytes=67108864
PROPS
  if [ -n "${WIKISTREAM_KAFKA_EXTRA_PROPS:-}" ]; then
    cat "$WIKISTREAM_KAFKA_EXTRA_PROPS" >>"$kafka_dir/server.properties"
  fi
  cat >"$kafka_dir/log4j.properties" <<'PROPS'
log4j.rootLogger=WARN, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=${kafka.logs.dir}/server.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaServer=INFO
log4j.logger.kafka.server.BrokerServer=INFO
PROPS
  if [ ! -f "$kafka_dir/data/meta.properties" ]; then
    local scram=()
    for cred in ${WIKISTREAM_KAFKA_SCRAM:-}; do scram+=(--add-scram "$cred"); done
    java -cp "$libs/*" kafka.tools.StorageTool format -t "$(java -cp "$libs/*" kafka.tools.StorageTool random-uuid 2>/dev/null)" \
      -c "$kafka_dir/server.properties" "${scram[@]}" >/dev/null 2>&1
  fi
  # Each start logs afresh, so the readiness check below sees only this start's lines.
  [ -f "$kafka_dir/server.log" ] && mv "$kafka_dir/server.log" "$kafka_dir/server.log.1"
  log "starting Kafka on 127.0.0.1:$kafka_port"
  nohup java -Xms256m -Xmx768m -XX:+UseG1GC -Djava.awt.headless=true \
    -Dkafka.logs.dir="$kafka_dir" -Dlog4j.configuration="file:$kafka_dir/log4j.properties" \
    -cp "$libs/*" kafka.Kafka "$kafka_dir/server.properties" >"$kafka_dir/stdout.log" 2>&1 &
  echo $! >"$kafka_dir/pid"
  for _ in $(seq 1 120); do
    if port_open "$kafka_port" && grep -q "Transition from STARTING to STARTED" "$kafka_dir/server.log" 2>/dev/null; then return; fi
    kafka_running || { log "Kafka exited; see $kafka_dir/server.log"; tail -20 "$kafka_dir/server.log" >&2 || true; exit 1; }
    sleep 0.5
  done
  log "Kafka did not start within 60 s; see $kafka_dir/server.log"
  exit 1
}

stop_kafka() {
  kafka_running || return 0
  local pid
  pid=$(cat "$kafka_dir/pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -9 "$pid" 2>/dev/null || true
  # Gone for good before the next start binds the same ports.
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  rm -f "$kafka_dir/pid"
}

# --- PostgreSQL ---------------------------------------------------------------------------------

pg_bin() {
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  if [ -z "$bin" ]; then
    log "installing PostgreSQL from Debian's packages"
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  fi
  echo "$bin"
}

# Runs a PostgreSQL binary as the `postgres` system user when we are root (initdb refuses root).
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_pg() {
  local bin
  bin=$(pg_bin)
  mkdir -p "$state"
  if [ ! -f "$pg_dir/PG_VERSION" ]; then
    mkdir -p "$pg_dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$pg_dir"
    chmod 700 "$pg_dir"
    as_pg "$bin/initdb" -D "$pg_dir" -U wikistream --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  if as_pg "$bin/pg_ctl" -D "$pg_dir" status >/dev/null 2>&1; then
    :
  else
    local ssl=""
    if [ -n "${WIKISTREAM_PG_SSL_DIR:-}" ]; then
      # The server refuses a key that others can read; it must belong to the server's user.
      install -m 600 "$WIKISTREAM_PG_SSL_DIR/server.crt" "$WIKISTREAM_PG_SSL_DIR/server.key" "$pg_dir/"
      [ "$(id -u)" = 0 ] && chown postgres: "$pg_dir/server.crt" "$pg_dir/server.key"
      ssl=" -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key"
    fi
    log "starting PostgreSQL on 127.0.0.1:$pg_port"
    as_pg "$bin/pg_ctl" -D "$pg_dir" -l "$pg_dir/server.log" -w -t 60 \
      -o "-p $pg_port -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off$ssl" \
      start >/dev/null
  fi
  if ! as_pg "$bin/psql" -h 127.0.0.1 -p "$pg_port" -U wikistream -d postgres -tAc \
    "select 1 from pg_database where datname = 'wiki_data'" | grep -q 1; then
    as_pg "$bin/createdb" -h 127.0.0.1 -p "$pg_port" -U wikistream wiki_data
  fi
}

stop_pg() {
  [ -f "$pg_dir/PG_VERSION" ] || return 0
  local bin
  bin=$(pg_bin)
  as_pg "$bin/pg_ctl" -D "$pg_dir" status >/dev/null 2>&1 || return 0
  as_pg "$bin/pg_ctl" -D "$pg_dir" -m fast -w stop >/dev/null
}

case "${1:-start}" in
  start)
    start_pg
    start_kafka
    print_env
    ;;
  stop)
    stop_kafka
    stop_pg
    log "stopped"
    ;;
  env) print_env ;;
  start-kafka) start_kafka ;;
  stop-kafka) stop_kafka ;;
  start-pg) start_pg ;;
  stop-pg) stop_pg ;;
  *)
    log "usage: $0 start|stop|env|start-kafka|stop-kafka|start-pg|stop-pg"
    exit 64
    ;;
esac
