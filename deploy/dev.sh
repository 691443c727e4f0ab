#!/usr/bin/env bash
# Starts a complete local Tollgate stack on this machine with one command:
#   a private Postgres cluster under .tollgate/ (data survives restarts), the admin API, the proxy,
#   and the mock Mistral server (unless MISTRAL_API_KEY is set: then the real API is the upstream).
#   On first start it creates a demo tenant, credential and virtual key and prints how to call them.
#   Ctrl-C stops everything it started; a second start reuses the data.
#
# Environment: TOLLGATE_ADMIN_PORT (8081), TOLLGATE_PROXY_PORT (8080), TOLLGATE_MOCK_PORT (8090),
#              TOLLGATE_PG_PORT (54329), TOLLGATE_DEV_DIR (.tollgate), SWIFT_CONFIGURATION (debug|release),
#              MISTRAL_API_KEY (use the real Mistral API instead of the mock).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
dir=${TOLLGATE_DEV_DIR:-$root/.tollgate}
admin_port=${TOLLGATE_ADMIN_PORT:-8081}
proxy_port=${TOLLGATE_PROXY_PORT:-8080}
mock_port=${TOLLGATE_MOCK_PORT:-8090}
pg_port=${TOLLGATE_PG_PORT:-54329}
config=${SWIFT_CONFIGURATION:-debug}
bindir=$(pg_config --bindir)
mkdir -p "$dir"

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

echo "==> building ($config)"
for product in tollgate-admin tollgate tollgate-mock-mistral tollgate-proxy; do
  swift build -c "$config" --product "$product" > "$dir/build.log" 2>&1 \
    || { grep -E "error:" "$dir/build.log" | head -20 >&2; echo "swift build of $product failed (log: $dir/build.log)" >&2; exit 1; }
done
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
export TOLLGATE_ALLOW_PRIVATE_UPSTREAMS=true TOLLGATE_ADMIN_PORT=$admin_port TOLLGATE_PROXY_PORT=$proxy_port
export TOLLGATE_JOURNAL_DIR="$dir/journal" LOG_FORMAT=${LOG_FORMAT:-text}

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
  (umask 077; "$bin/tollgate" bootstrap --name dev | grep -oE 'tg_admin_[0-9A-Za-z]{38}' > "$dir/admin-token")
fi

if [ -n "${MISTRAL_API_KEY:-}" ]; then
  upstream_url=https://api.mistral.ai
  upstream_key=$MISTRAL_API_KEY
else
  upstream_url=http://127.0.0.1:$mock_port
  upstream_key=sk-mock-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
  [ -f "$dir/mock-key" ] && upstream_key=$(cat "$dir/mock-key") || (umask 077; echo "$upstream_key" > "$dir/mock-key")
  "$bin/tollgate-mock-mistral" --port "$mock_port" --accept-key "$upstream_key" --quiet & pids+=($!)
fi
"$bin/tollgate-admin" & pids+=($!)
"$bin/tollgate-proxy" & pids+=($!)
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$admin_port/healthz" >/dev/null 2>&1 && curl -fsS "http://127.0.0.1:$proxy_port/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done

admin_token=$(cat "$dir/admin-token")
api() { curl -fsS -H "Authorization: Bearer $admin_token" -H 'Content-Type: application/json' "$@"; }
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
if [ ! -f "$dir/demo-key" ]; then
  echo "==> creating the demo tenant, credential and key"
  tenant=$(api -X POST "http://127.0.0.1:$admin_port/v1/tenants" \
    -d '{"slug":"demo","name":"Demo team","currency":"USD","budget":{"amount":"10.00","period":"monthly"}}' | json "['id']")
  printf '{"name":"mistral","baseUrl":"%s","secret":"%s"}' "$upstream_url" "$upstream_key" \
    | api -X POST "http://127.0.0.1:$admin_port/v1/tenants/$tenant/credentials" -d @- >/dev/null
  (umask 077; api -X POST "http://127.0.0.1:$admin_port/v1/tenants/$tenant/keys" \
    -d '{"name":"demo","budget":{"amount":"1.00","period":"daily"},"limits":{"requestsPerMinute":60}}' \
    | json "['secret']" > "$dir/demo-key")
fi
demo_key=$(cat "$dir/demo-key")

cat <<MSG

Tollgate dev stack is up.
  Proxy (use instead of https://api.mistral.ai):  http://127.0.0.1:$proxy_port
  Admin API:     http://127.0.0.1:$admin_port   (spec: /openapi.yaml, health: /readyz)
  Upstream:      $upstream_url
  Postgres:      $DATABASE_URL
  Admin token:   $admin_token   (also in $dir/admin-token)
  Virtual key:   $demo_key   (also in $dir/demo-key)

Try it:
  curl -s http://127.0.0.1:$proxy_port/v1/chat/completions -H "Authorization: Bearer $demo_key" \\
    -H 'Content-Type: application/json' \\
    -d '{"model":"mistral-small-latest","messages":[{"role":"user","content":"Hello!"}]}'

  pip install mistralai   # once; then:
  python3 -c 'from mistralai.client import Mistral; c = Mistral(api_key="$demo_key", server_url="http://127.0.0.1:$proxy_port"); print(c.chat.complete(model="mistral-small-latest", messages=[{"role": "user", "content": "Hello!"}]).choices[0].message.content)'

Press Ctrl-C to stop.
MSG
wait
