#!/usr/bin/env bash
# Starts (idempotently) or stops a local Apache Kafka (KRaft, one node) and a throwaway PostgreSQL
# cluster on loopback, for development and tests. Data lives in .cache/services (git-ignored).
#   scripts/services.sh start   # prints `export KAFKA_BROKERS=...` and `export DATABASE_URL=...`
#   scripts/services.sh stop
#   scripts/services.sh env     # prints the settings only
#   scripts/services.sh admin-url  # the superuser's URL (tests create databases with it)
# PostgreSQL asks every client for a password (scram-sha-256, loopback only). initdb generates two
# random passwords into files only their owner can read: pg.admin.password (the superuser
# `postgres`) and pg.wikistream.password (the pipeline's role `wikistream`: no superuser, no
# CREATEDB, no CREATEROLE; it owns the public schema of wiki_data and nothing else). A cluster made
# by the old script (trust authentication, `wikistream` the superuser) is switched in place, data
# kept: see upgrade_trust_cluster.
# Ports: WIKISTREAM_KAFKA_PORT (19092; the controller uses +1), WIKISTREAM_PG_PORT (15432).
# WIKISTREAM_SERVICES_DIR (.cache/services) holds their data: a test that stops and restarts
# brokers can run its own pair on other ports and another folder.
# Optional, for tests of secure connections (unset: the plain pair above):
#   WIKISTREAM_KAFKA_EXTRA_PROPS  a file appended to server.properties (later keys win: extra
#                                 listeners such as SSL or SASL_SSL, their keystores and JAAS)
#   WIKISTREAM_KAFKA_SCRAM        SCRAM credentials created when the storage is formatted,
#                                 space-separated, e.g. 'SCRAM-SHA-256=[name=u,password=p]'
#   WIKISTREAM_PG_SSL_DIR         a folder with server.crt and server.key: PostgreSQL runs ssl=on
# PostgreSQL is durable by default (fsync, synchronous_commit, full_page_writes on): a crash keeps
# every commit whose Kafka offset the consumer already committed. WIKISTREAM_PG_FAST=1 turns the
# three off for speed (tests that are not about durability only; a crash then loses commits).
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
  echo "export DATABASE_URL=postgres://wikistream:$(cat "$state/pg.wikistream.password")@127.0.0.1:$pg_port/wiki_data"
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

# A random password (URL-safe, so it needs no escaping in DATABASE_URL) in a file only we can read.
new_password() {
  [ -s "$1" ] && return
  (umask 077 && head -c 24 /dev/urandom | base64 | tr '+/' '-_' >"$1")
}

# psql as `user` (password from its file) on `db`; extra arguments follow.
pg_sql() {
  local user=$1 db=$2 file=$3
  shift 3
  PGPASSWORD=$(cat "$file") "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg_port" \
    -U "$user" -d "$db" "$@"
}
pg_admin() { pg_sql postgres "$1" "$state/pg.admin.password" "${@:2}"; }

# As root, PostgreSQL runs as `postgres`, who must be able to enter every folder down to $state.
check_pg_can_enter() {
  [ "$(id -u)" = 0 ] || return 0
  local dir="" part
  local IFS=/
  for part in $state; do
    [ -n "$part" ] || continue
    dir="$dir/$part"
    if ! runuser -u postgres -- test -x "$dir" 2>/dev/null; then
      log "PostgreSQL runs as the postgres system user when started as root, and that user cannot enter"
      log "  $dir ($(stat -c '%A %U:%G' "$dir"))"
      log "Let it in (chmod o+x '$dir', and the same for any parent it cannot enter), or set"
      log "WIKISTREAM_SERVICES_DIR to a folder it can enter, or run as an ordinary user."
      exit 1
    fi
  done
}

start_pg() {
  bin=$(pg_bin)
  mkdir -p "$state"
  check_pg_can_enter
  new_password "$state/pg.admin.password"
  new_password "$state/pg.wikistream.password"
  if [ ! -f "$pg_dir/PG_VERSION" ]; then
    mkdir -p "$pg_dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$pg_dir"
    chmod 700 "$pg_dir"
    # initdb reads the superuser's password from a file of the server's user, removed after.
    install -m 600 "$state/pg.admin.password" "$state/initdb.pw"
    [ "$(id -u)" = 0 ] && chown postgres: "$state/initdb.pw"
    as_pg "$bin/initdb" -D "$pg_dir" -U postgres --pwfile="$state/initdb.pw" \
      --auth-host=scram-sha-256 --auth-local=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
    rm -f "$state/initdb.pw"
  fi
  if ! as_pg "$bin/pg_ctl" -D "$pg_dir" status >/dev/null 2>&1; then
    local ssl=""
    if [ -n "${WIKISTREAM_PG_SSL_DIR:-}" ]; then
      # The server refuses a key that others can read; it must belong to the server's user.
      install -m 600 "$WIKISTREAM_PG_SSL_DIR/server.crt" "$WIKISTREAM_PG_SSL_DIR/server.key" "$pg_dir/"
      [ "$(id -u)" = 0 ] && chown postgres: "$pg_dir/server.crt" "$pg_dir/server.key"
      ssl=" -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key"
    fi
    local fast=""
    if [ "${WIKISTREAM_PG_FAST:-}" = 1 ]; then
      fast=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    fi
    log "starting PostgreSQL on 127.0.0.1:$pg_port${fast:+ (not durable: WIKISTREAM_PG_FAST=1)}"
    as_pg "$bin/pg_ctl" -D "$pg_dir" -l "$pg_dir/server.log" -w -t 60 \
      -o "-p $pg_port -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c max_connections=200$fast$ssl" \
      start >/dev/null
  fi
  if grep -qE '^[^#]*[[:space:]]trust([[:space:]]|$)' "$pg_dir/pg_hba.conf"; then
    upgrade_trust_cluster
  fi
  ensure_app_role
}

# The pipeline's role and database: the role owns wiki_data's public schema and nothing else.
ensure_app_role() {
  local pw
  pw=$(cat "$state/pg.wikistream.password")
  pg_admin postgres -v pw="$pw" <<'SQL'
select format('create role wikistream login nosuperuser nocreatedb nocreaterole noreplication nobypassrls password %L', :'pw')
  where not exists (select from pg_roles where rolname = 'wikistream') \gexec
select format('alter role wikistream login nosuperuser nocreatedb nocreaterole noreplication nobypassrls password %L', :'pw') \gexec
select 'create database wiki_data owner postgres'
  where not exists (select from pg_database where datname = 'wiki_data') \gexec
revoke all on database postgres from public;
revoke all on database wiki_data from public;
grant connect, temporary on database wiki_data to wikistream;
SQL
  pg_admin wiki_data -c "alter schema public owner to wikistream"
}

# A cluster from the old script: trust authentication and `wikistream` its (bootstrap) superuser.
# Switched in place, data kept: the bootstrap superuser is renamed `postgres` and gets the admin
# password, a new non-superuser `wikistream` takes over what the old one owned in wiki_data, and
# pg_hba.conf asks for scram-sha-256. Trust is still on during these steps, so no password is needed.
upgrade_trust_cluster() {
  log "switching the PostgreSQL cluster in $pg_dir from trust to password authentication (data kept)"
  local psql=("$bin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg_port")
  local boot
  boot=$("${psql[@]}" -U wikistream -d postgres -tAc "select rolname from pg_roles where oid = 10" 2>/dev/null ||
    "${psql[@]}" -U postgres -d postgres -tAc "select rolname from pg_roles where oid = 10")
  if [ "$boot" = wikistream ]; then
    "${psql[@]}" -U wikistream -d postgres -c "create role wikistream_upgrade superuser login"
    "${psql[@]}" -U wikistream_upgrade -d postgres -c "alter role wikistream rename to postgres"
    "${psql[@]}" -U wikistream_upgrade -d postgres -c "create role wikistream login"
    if "${psql[@]}" -U postgres -d postgres -tAc "select 1 from pg_database where datname = 'wiki_data'" | grep -q 1; then
      "${psql[@]}" -U wikistream_upgrade -d wiki_data <<'SQL'
do $$
declare r record;
begin
  for r in select c.oid::regclass as name, c.relkind from pg_class c
      join pg_namespace n on n.oid = c.relnamespace
      where c.relowner = 10 and c.relkind in ('r', 'p', 'v', 'm', 'f')
        and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg_toast%'
  loop
    execute format('alter table %s owner to wikistream', r.name);
  end loop;
  for r in select c.oid::regclass as name from pg_class c
      join pg_namespace n on n.oid = c.relnamespace
      where c.relowner = 10 and c.relkind = 'S' and n.nspname not in ('pg_catalog', 'information_schema')
  loop
    execute format('alter sequence %s owner to wikistream', r.name);
  end loop;
  for r in select nspname from pg_namespace
      where nspowner = 10 and nspname not like 'pg_%' and nspname <> 'information_schema'
  loop
    execute format('alter schema %I owner to wikistream', r.nspname);
  end loop;
end $$;
SQL
    fi
    "${psql[@]}" -U postgres -d postgres -c "drop role wikistream_upgrade"
  fi
  "${psql[@]}" -U postgres -d postgres -v pw="$(cat "$state/pg.admin.password")" <<'SQL'
alter role postgres password :'pw';
SQL
  as_pg sed -i -E 's/^([^#]*[[:space:]])trust([[:space:]]|$)/\1scram-sha-256\2/' "$pg_dir/pg_hba.conf"
  "${psql[@]}" -U postgres -d postgres -tAc "select pg_reload_conf()" >/dev/null
}

stop_pg() {
  [ -f "$pg_dir/PG_VERSION" ] || return 0
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
  admin-url) echo "postgres://postgres:$(cat "$state/pg.admin.password")@127.0.0.1:$pg_port/postgres" ;;
  start-kafka) start_kafka ;;
  stop-kafka) stop_kafka ;;
  start-pg) start_pg ;;
  stop-pg) stop_pg ;;
  *)
    log "usage: $0 start|stop|env|start-kafka|stop-kafka|start-pg|stop-pg"
    exit 64
    ;;
esac
