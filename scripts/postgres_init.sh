#!/usr/bin/env bash
# compose.yaml's PostgreSQL, first start only (/docker-entrypoint-initdb.d): the pipeline's role
# APP_DB_USER (password APP_DB_PASSWORD) gets no superuser, no CREATEDB, no CREATEROLE, and owns
# the public schema of POSTGRES_DB and nothing else; the superuser stays POSTGRES_USER. The same
# layout as scripts/services.sh makes for the local cluster.
set -euo pipefail
psql -X -q -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v app="$APP_DB_USER" -v pw="$APP_DB_PASSWORD" -v db="$POSTGRES_DB" <<'SQL'
select format('create role %I login nosuperuser nocreatedb nocreaterole noreplication nobypassrls password %L', :'app', :'pw') \gexec
select format('revoke all on database %I from public', :'db') \gexec
revoke all on database postgres from public;
select format('grant connect, temporary on database %I to %I', :'db', :'app') \gexec
select format('alter schema public owner to %I', :'app') \gexec
SQL
