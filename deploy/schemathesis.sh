#!/usr/bin/env bash
# Fuzzes the admin API against its own served spec with schemathesis (PyPI):
# starts a throwaway Postgres cluster and tollgate-admin on it, bootstraps a platform token,
# then checks that no request yields a server error or a response that breaks the spec.
# Usage: deploy/schemathesis.sh [extra schemathesis args]   (e.g. --max-examples 50)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v schemathesis >/dev/null || pip install --quiet schemathesis
bindir=$(pg_config --bindir)
work=$(mktemp -d /tmp/tg-st-XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
pg_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$work"
as_pg "$bindir/initdb" -D "$work/pg" -U tollgate -A trust --no-sync >/dev/null
as_pg "$bindir/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w -o "-p $pg_port -k $work -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
admin_pid=
cleanup() {
  [ -n "$admin_pid" ] && kill "$admin_pid" 2>/dev/null || true
  as_pg "$bindir/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

swift build --product tollgate-admin >/dev/null
swift build --product tollgate >/dev/null
bin=$(swift build --show-bin-path)
export DATABASE_URL="postgres://tollgate@127.0.0.1:$pg_port/postgres?sslmode=disable"
eval "$("$bin/tollgate" generate-secrets | sed 's/^/export /')"
export TOLLGATE_ADMIN_PORT=$port
"$bin/tollgate" migrate >/dev/null
token=$("$bin/tollgate" bootstrap --name schemathesis | grep -oE 'tg_admin_[0-9A-Za-z]{38}')
"$bin/tollgate-admin" > "$work/admin.log" 2>&1 & admin_pid=$!
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

schemathesis run "http://127.0.0.1:$port/openapi.yaml" \
  --header "Authorization: Bearer $token" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
  --exclude-operation-id revokeAdminToken \
  "$@"
status=$?
if grep -q '"level":"error"\|error' "$work/admin.log"; then grep -i error "$work/admin.log" | head -20; fi
exit $status
