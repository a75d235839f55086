# Shared helpers for the project's scripts: bring up the local services the product needs.
# Sourced, not run. Idempotent: running services are left alone.

PG_HOST=${PG_HOST:-127.0.0.1}
PG_PORT=${PG_PORT:-5432}
REDIS_PORT=${REDIS_PORT:-6379}

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

psql_admin() {
  local db=$1; shift
  psql -X -h "$PG_HOST" -p "$PG_PORT" -U postgres -d "$db" "$@"
}

apt_install() {
  if [ "$(id -u)" != 0 ]; then
    log "missing Debian packages: $* — install them (apt-get install $*) or run as root"
    return 1
  fi
  if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_postgres() {
  command -v pg_ctlcluster >/dev/null || apt_install postgresql postgresql-client
  if ! pg_isready -q -h "$PG_HOST" -p "$PG_PORT"; then
    local ver
    ver=$(ls /etc/postgresql | sort -V | tail -1)
    log "starting PostgreSQL $ver"
    pg_ctlcluster --skip-systemctl-redirect "$ver" main start
    for _ in $(seq 50); do pg_isready -q -h "$PG_HOST" -p "$PG_PORT" && break; sleep 0.2; done
  fi
  # A fresh Debian install asks for passwords on TCP; this is a development machine, so let the
  # local postgres superuser in over loopback (the product itself uses its own roles).
  if ! psql_admin postgres -qAtc 'select 1' >/dev/null 2>&1; then
    local hba
    hba=$(ls /etc/postgresql/*/main/pg_hba.conf | sort -V | tail -1)
    log "allowing local loopback connections for development in $hba"
    sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
    pg_ctlcluster --skip-systemctl-redirect "$(basename "$(dirname "$(dirname "$hba")")")" main reload
    sleep 0.5
  fi
  psql_admin postgres -qAtc 'select 1' >/dev/null
}

ensure_redis() {
  command -v redis-server >/dev/null || apt_install redis-server
  if ! redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    log "starting Redis"
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
      --dir "${TMPDIR:-/tmp}" --logfile "${TMPDIR:-/tmp}/portal-redis.log"
    for _ in $(seq 50); do redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  fi
}

ensure_rust() {
  if ! command -v cargo >/dev/null; then
    log "cargo not found: install Rust (Debian: apt-get install cargo, or rustup) and re-run"
    return 1
  fi
}

ensure_services() {
  command -v psql >/dev/null || apt_install postgresql-client
  ensure_postgres
  ensure_redis
}

# The tests' SMTP server is Debian's python3-aiosmtpd, run by Debian's own python3.
ensure_smtp_sink() {
  /usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null || apt_install python3-aiosmtpd
}

# The object-storage tests' S3-compatible server: PyPI's moto[server], from the machine's
# python3 if it has it, else from a virtualenv kept outside the clone. Tells the tests which
# interpreter runs it (PORTAL_TEST_S3_PYTHON).
ensure_s3_server() {
  if python3 -c 'import moto.server' 2>/dev/null; then
    export PORTAL_TEST_S3_PYTHON=python3
    return
  fi
  local venv=${XDG_CACHE_HOME:-$HOME/.cache}/portal-moto
  if ! "$venv/bin/python" -c 'import moto.server' 2>/dev/null; then
    python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv && python3 -m venv "$venv"; }
    "$venv/bin/pip" install -q 'moto[server]'
  fi
  export PORTAL_TEST_S3_PYTHON="$venv/bin/python"
}

# The document tests read the PDFs the workers make with poppler's pdftotext and pdfinfo.
ensure_pdf_tools() {
  command -v pdftotext >/dev/null && command -v pdfinfo >/dev/null || apt_install poppler-utils
}

ensure_browser_tools() {
  command -v chromium >/dev/null || apt_install chromium
  command -v node >/dev/null || apt_install nodejs npm
  (cd tests/browser && { [ -d node_modules/playwright-core ] && [ -d node_modules/axe-core ] || npm ci --no-audit --no-fund --silent; })
}

# Drops a database made by the scripts, and the roles its clinics (and app role) had.
drop_portal_db() {
  local db=$1 app_role=$2 roles
  roles=$(psql_admin "$db" -qAtc "SELECT role_name FROM control.tenants" 2>/dev/null || true)
  psql_admin postgres -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null
  for r in $roles $app_role; do psql_admin postgres -qc "DROP ROLE IF EXISTS \"$r\"" >/dev/null; done
}
