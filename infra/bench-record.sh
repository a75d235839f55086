#!/usr/bin/env bash
# `infra/bench record`: the health record (issue 11). A fresh database with the demo clinics
# and `portal serve` (release, default configuration); then
#   1. FHIR import throughput: 1,000-entry transaction bundles POSTed to /fhir/R4 (three new
#      patients: first import; then each again: re-import), beside pgbench TPC-B in the run;
#   2. a patient with ten years of dense data (>= 5,000 observations, imported the same way):
#      the health summary page, a trend page, and GET /api/v1/me as req/s and p99 at 16
#      connections (wrk -t2 -c16): first as shipped (repeat views served from the web's record
#      cache after a version check), then with the server restarted with the cache off
#      (PORTAL_RECORD_CACHE_MB=0: every view reads the chart, as a first view does).
# Sourced by infra/bench.
set -euo pipefail
seconds=${BENCH_SECONDS:-15}
bin=${CARGO_TARGET_DIR:-target}/release/portal
gen=${CARGO_TARGET_DIR:-target}/release/fhir_bundle
db="portal_bench_record_$$"
port=${BENCH_PORT:-18081}
export PORTAL_DATABASE_ADMIN_URL="postgres://postgres@127.0.0.1:5432/$db"
export PORTAL_DATABASE_URL="postgres://${db}_app@127.0.0.1:5432/$db"
export PORTAL_REDIS_URL=redis://127.0.0.1:6379 PORTAL_REDIS_PREFIX="$db"
export PORTAL_HTTP_ADDR=127.0.0.1:$port PORTAL_BASE_DOMAIN=localhost
export PORTAL_MASTER_KEY=ZGV2ZWxvcG1lbnQgb25seSwgbmV2ZXIgZm9yIHJlYWw=
unset PORTAL_LOG PORTAL_DATABASE_POOL_SIZE PORTAL_DEV PORTAL_RECORD_CACHE_MB
log_file=$(mktemp)
work=$(mktemp -d)
server=
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  drop_portal_db "$db" "${db}_app"
  psql_admin postgres -qc "DROP DATABASE IF EXISTS ${db}_pgbench" >/dev/null
  rm -rf "$log_file" "$work"
}
trap cleanup EXIT
cargo build --release -p portal -p portal-tests --bin portal --bin fhir_bundle --quiet
psql_admin postgres -qc "CREATE DATABASE $db"
$bin migrate >/dev/null
$bin demo >/dev/null
key=$($bin api-keys create --clinic sunrise --name bench | tail -1)
start_server() {
  $bin serve >"$log_file" 2>&1 &
  server=$!
  for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
}
start_server
host=sunrise.localhost
post() { # file → seconds
  curl -fsS -o "$work/out.json" -w '%{time_total}' -H "Host: $host" \
    -H 'Content-Type: application/fhir+json' -H "Authorization: Bearer $key" \
    --data-binary @"$1" "http://127.0.0.1:$port/fhir/R4"
}
echo "== FHIR import, 1,000-entry transaction bundles"
for i in 1 2 3; do
  $gen "BENCH-$i" "Bench$i" "Patient" 1970-01-0$i 66 122 >"$work/b$i.json"
done
entries=$(python3 -c "import json,sys; print(len(json.load(open('$work/b1.json'))['entry']))")
for i in 1 2 3; do
  t=$(post "$work/b$i.json")
  printf 'first import  %5d entries  %6.3f s  %7.0f resources/s\n' "$entries" "$t" "$(echo "$entries / $t" | bc -l)"
done
for i in 1 2 3; do
  t=$(post "$work/b$i.json")
  printf 're-import     %5d entries  %6.3f s  %7.0f resources/s\n' "$entries" "$t" "$(echo "$entries / $t" | bc -l)"
done
psql_admin postgres -qc "CREATE DATABASE ${db}_pgbench"
pgbench -h 127.0.0.1 -U postgres -i -s 10 -q "${db}_pgbench" >/dev/null 2>&1
printf 'pgbench TPC-B -c16 -j2 %ss: %s tps\n' "$seconds" \
  "$(pgbench -h 127.0.0.1 -U postgres -c16 -j2 -T "$seconds" "${db}_pgbench" 2>/dev/null | sed -nE 's/^tps = ([0-9.]+).*/\1/p' | head -1)"

echo "== ten years of dense data for ana.lima (visits every 9 days)"
# The demo linked Ana to the demo EHR's MRN, so this bundle lands in her record.
$gen "sunrise-ana" "Ana" "Lima" 1984-03-27 400 9 >"$work/ana.json"
t=$(post "$work/ana.json")
# What autovacuum does within a minute of a large import (statistics, visibility map), done
# at once so the measurement does not depend on when it runs.
psql_admin "$db" -qc "VACUUM ANALYZE" >/dev/null
obs=$(psql_admin "$db" -tAc "SELECT count(*) FROM tenant_sunrise.observations o JOIN tenant_sunrise.patients p ON p.id = o.patient_id WHERE p.given_name = 'Ana'")
echo "imported in ${t}s; Ana now has $obs observations"
token=$(curl -fsS -D - -o /dev/null -H "Host: $host" -H 'Content-Type: application/json' \
  -d "{\"email\":\"ana.lima@sunrise.example\",\"password\":\"${PORTAL_DEMO_PASSWORD:-demo passphrase for portal}\"}" \
  "http://127.0.0.1:$port/api/v1/sessions" | sed -nE 's/^set-cookie: [^=]*portal_session=([^;]+).*/\1/ip' | tr -d '\r')
[ -n "$token" ] || { echo "could not sign in"; exit 1; }
rate() { sed -nE 's/^Requests\/sec:[[:space:]]+([0-9.]+).*/\1/p'; }
p99() { sed -nE 's/^[[:space:]]+99%[[:space:]]+([0-9.]+[a-z]+).*/\1/p'; }
run() { # name, path
  BENCH_HOST=$host BENCH_AUTH="Bearer $token" BENCH_PATH=$2 \
    wrk -t2 -c16 -d3s --latency -s tests/bench/get.lua "http://127.0.0.1:$port" >/dev/null
  local out; out=$(BENCH_HOST=$host BENCH_AUTH="Bearer $token" BENCH_PATH=$2 \
    wrk -t2 -c16 -d"${seconds}s" --latency -s tests/bench/get.lua "http://127.0.0.1:$port")
  printf '%-34s %10s req/s   p99 %s\n' "$1" "$(echo "$out" | rate)" "$(echo "$out" | p99)"
}
echo "== wrk -t2 -c16, ${seconds}s"
run "GET /api/v1/me" /api/v1/me
run "health summary /record" /record
run "trend /results/trend/2345-7" /results/trend/2345-7
run "trend /results/trend/29463-7" /results/trend/29463-7
echo "== the same with the record cache off (every view reads the chart)"
kill "$server" && wait "$server" 2>/dev/null || true
export PORTAL_RECORD_CACHE_MB=0
start_server
run "GET /api/v1/me" /api/v1/me
run "health summary /record" /record
run "trend /results/trend/2345-7" /results/trend/2345-7
run "trend /results/trend/29463-7" /results/trend/29463-7
