#!/usr/bin/env bash
# `infra/bench serve`: the shipped binary as an operator runs it. A fresh database with the
# demo clinics, `portal serve` (release) with its default configuration — only the settings it
# requires are given (pool size, log level and the rest are the defaults) — and wrk from the
# same machine against it: the machine's ceilings (/healthz, no database; pgbench -S), a
# clinic's home page, and GET /api/v1/me as a signed-in patient. Sourced by infra/bench.
set -euo pipefail
seconds=${BENCH_SECONDS:-15}
bin=${CARGO_TARGET_DIR:-target}/release/portal
db="portal_bench_serve_$$"
port=${BENCH_PORT:-18080}
export PORTAL_DATABASE_ADMIN_URL="postgres://postgres@127.0.0.1:5432/$db"
export PORTAL_DATABASE_URL="postgres://${db}_app@127.0.0.1:5432/$db"
# BENCH_DB_SOCKET=1: the application connects over PostgreSQL's Unix socket instead of TCP.
if [ "${BENCH_DB_SOCKET:-}" = 1 ]; then
  export PORTAL_DATABASE_URL="postgres://${db}_app@%2Fvar%2Frun%2Fpostgresql/$db"
fi
export PORTAL_REDIS_URL=redis://127.0.0.1:6379 PORTAL_REDIS_PREFIX="$db"
export PORTAL_HTTP_ADDR=127.0.0.1:$port PORTAL_BASE_DOMAIN=localhost
export PORTAL_MASTER_KEY=ZGV2ZWxvcG1lbnQgb25seSwgbmV2ZXIgZm9yIHJlYWw=
unset PORTAL_LOG PORTAL_DATABASE_POOL_SIZE PORTAL_DEV
log_file=$(mktemp)
server=
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  drop_portal_db "$db" "${db}_app"
  psql_admin postgres -qc "DROP DATABASE IF EXISTS ${db}_pgbench" >/dev/null
  rm -f "$log_file"
}
trap cleanup EXIT
cargo build --release -p portal --quiet
psql_admin postgres -qc "CREATE DATABASE $db"
$bin migrate >/dev/null
$bin demo >/dev/null
$bin serve >"$log_file" 2>&1 &
server=$!
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
host=sunrise.localhost
token=$(curl -fsS -D - -o /dev/null -H "Host: $host" -H 'Content-Type: application/json' \
  -d "{\"email\":\"ana.lima@sunrise.example\",\"password\":\"${PORTAL_DEMO_PASSWORD:-demo passphrase for portal}\"}" \
  "http://127.0.0.1:$port/api/v1/sessions" | sed -nE 's/^set-cookie: [^=]*portal_session=([^;]+).*/\1/ip' | tr -d '\r')
[ -n "$token" ] || { echo "could not sign in"; exit 1; }

rate() { sed -nE 's/^Requests\/sec:[[:space:]]+([0-9.]+).*/\1/p'; }
p99() { sed -nE 's/^[[:space:]]+99%[[:space:]]+([0-9.]+[a-z]+).*/\1/p'; }
run() { # name, then wrk arguments
  local name=$1; shift
  wrk -t2 -c32 -d3s --latency "$@" >/dev/null  # warm-up
  local out; out=$(wrk -t2 -c32 -d"${seconds}s" --latency "$@")
  printf '%-28s %10s req/s   p99 %s\n' "$name" "$(echo "$out" | rate)" "$(echo "$out" | p99)"
}
echo "== portal serve (release, default configuration), wrk -t2 -c32, ${seconds}s"
run "/healthz (no database)" "http://127.0.0.1:$port/healthz"
run "clinic home page /" -H "Host: $host" "http://127.0.0.1:$port/"
BENCH_HOST=$host BENCH_AUTH="Bearer $token" BENCH_PATH=/api/v1/me \
  run "GET /api/v1/me (signed in)" -s tests/bench/get.lua "http://127.0.0.1:$port"
psql_admin postgres -qc "CREATE DATABASE ${db}_pgbench"
pgbench -h 127.0.0.1 -U postgres -i -s 10 -q "${db}_pgbench" >/dev/null 2>&1
printf '%-28s %10s tps\n' "pgbench -S -c16 -j2" \
  "$(pgbench -h 127.0.0.1 -U postgres -S -c16 -j2 -T "$seconds" "${db}_pgbench" 2>/dev/null | sed -nE 's/^tps = ([0-9.]+).*/\1/p' | head -1)"
