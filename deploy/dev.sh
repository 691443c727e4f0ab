#!/usr/bin/env bash
# Starts a complete local Tollgate stack on this machine with one command:
#   a private Postgres cluster under .tollgate/ (data survives restarts), the admin API,
#   and the mock Mistral server. Ctrl-C stops everything it started; a second start reuses the data.
#
# Environment: TOLLGATE_ADMIN_PORT (8081), TOLLGATE_MOCK_PORT (8090), TOLLGATE_PG_PORT (54329),
#              TOLLGATE_DEV_DIR (.tollgate), SWIFT_CONFIGURATION (debug|release, default debug).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
dir=${TOLLGATE_DEV_DIR:-$root/.tollgate}
admin_port=${TOLLGATE_ADMIN_PORT:-8081}
mock_port=${TOLLGATE_MOCK_PORT:-8090}
pg_port=${TOLLGATE_PG_PORT:-54329}
config=${SWIFT_CONFIGURATION:-debug}
bindir=$(pg_config --bindir)
mkdir -p "$dir"

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

echo "==> building ($config)"
swift build -c "$config" --product tollgate-admin >/dev/null
swift build -c "$config" --product tollgate >/dev/null
swift build -c "$config" --product tollgate-mock-mistral >/dev/null
bin=$(swift build -c "$config" --show-bin-path)

# Postgres: a private cluster kept in $dir/pg; sockets in a short /tmp path (107-byte limit).
sock=/tmp/tollgate-dev-$(id -u)
mkdir -p "$sock"
if [ ! -d "$dir/pg" ]; then
  echo "==> creating Postgres cluster in $dir/pg"
  mkdir -p "$dir/pg"
  [ "$(id -u)" = 0 ] && chown postgres "$dir/pg" "$sock" && chmod 755 "$dir"
  as_pg "$bindir/initdb" -D "$dir/pg" -U tollgate -A trust --no-sync >/dev/null
fi
[ "$(id -u)" = 0 ] && chown postgres "$sock"
if ! as_pg "$bindir/pg_ctl" -D "$dir/pg" status >/dev/null 2>&1; then
  as_pg "$bindir/pg_ctl" -D "$dir/pg" -l "$dir/pg/server.log" -w \
    -o "-p $pg_port -k $sock -c listen_addresses=127.0.0.1" start >/dev/null
fi
as_pg "$bindir/psql" -h 127.0.0.1 -p "$pg_port" -U tollgate -d postgres -tAc \
  "SELECT 1 FROM pg_database WHERE datname = 'tollgate'" | grep -q 1 \
  || as_pg "$bindir/createdb" -h 127.0.0.1 -p "$pg_port" -U tollgate tollgate
export DATABASE_URL="postgres://tollgate@127.0.0.1:$pg_port/tollgate?sslmode=disable"

# Secrets: generated once, kept (0600) so existing credentials stay readable.
if [ ! -f "$dir/secrets.env" ]; then
  (umask 077; "$bin/tollgate" generate-secrets > "$dir/secrets.env")
fi
set -a; . "$dir/secrets.env"; set +a
export TOLLGATE_ALLOW_PRIVATE_UPSTREAMS=true TOLLGATE_ADMIN_PORT=$admin_port

pids=()
cleanup() {
  echo; echo "==> stopping"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  as_pg "$bindir/pg_ctl" -D "$dir/pg" -m fast stop >/dev/null 2>&1 || true
}
trap cleanup EXIT INT TERM

"$bin/tollgate" migrate
if [ ! -f "$dir/admin-token" ]; then
  (umask 077; "$bin/tollgate" bootstrap --name dev | tail -n 1 > "$dir/admin-token")
fi

"$bin/tollgate-mock-mistral" --port "$mock_port" --quiet & pids+=($!)
"$bin/tollgate-admin" & pids+=($!)
for _ in $(seq 1 50); do curl -fsS "http://127.0.0.1:$admin_port/healthz" >/dev/null 2>&1 && break; sleep 0.2; done

cat <<MSG

Tollgate dev stack is up.
  Admin API:     http://127.0.0.1:$admin_port   (spec: /openapi.yaml, health: /readyz)
  Mock Mistral:  http://127.0.0.1:$mock_port
  Postgres:      $DATABASE_URL
  Admin token:   $(cat "$dir/admin-token")   (also in $dir/admin-token)

Try:  curl -s -H "Authorization: Bearer \$(cat $dir/admin-token)" http://127.0.0.1:$admin_port/v1/whoami

Press Ctrl-C to stop.
MSG
wait
