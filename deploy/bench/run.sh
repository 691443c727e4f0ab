#!/usr/bin/env bash
# Tollgate data-plane benchmark (issue 5): one command, one machine.
#
# Starts a throwaway Postgres (stock settings: fsync on, synchronous_commit on - what an operator
# runs), the mock Mistral server (zero added latency), nginx as a plain reverse proxy to the same
# mock, and tollgate-proxy (release) with a real virtual key whose budgets and limits never trip.
# Then measures, with the same load generator (wrk + deploy/bench/bench.lua; streaming with
# deploy/bench/stream_client.py), each path in turn: direct → mock, nginx → mock, tollgate → mock.
# After every Tollgate measurement it checks the ledger (one row per 200, spent = mock usage × price).
# Prints one table (deploy/bench/report.py) and saves JSON under deploy/bench/results/.
#
# Environment:
#   BENCH_DURATION=10     seconds per wrk measurement      BENCH_WARMUP=2  seconds of warm-up before each
#   BENCH_PIN=0           1: wrk and the streaming client on core 1; proxy(s) and nginx on core 0;
#                         mock and Postgres float. See README "Benchmarks" for the trade-off.
#   BENCH_SCENARIOS=all   or a space-separated subset of: chat1 chat32 chat128 stream embed keys replicas client
#   BENCH_KEYS="10000 1000000"   key counts for the lookup scenario
#   BENCH_KEY_ROUNDS=4    times the key counts' runs alternate (hot and cold, a fresh proxy each)
#   BENCH_SKIP_BUILD=0    1: use binaries already in $BENCH_BIN
#   BENCH_BIN             default .build-bench/release (built with --scratch-path .build-bench)
#   BENCH_PG_OPTS=       extra postgres options, e.g. "-c synchronous_commit=off" (diagnosis only; not the published setup)
#   BENCH_PG_NICE=       a nice value for Postgres (e.g. 19; diagnosis only: is a tail the database taking the CPU?)
#   BENCH_JOURNAL_DIR=   where the proxies keep their settlement journals (e.g. /dev/shm; diagnosis only; default: the work dir)
#   BENCH_KEEP=0          1: leave the work directory (logs, Postgres data) behind
#   BENCH_PG_STATS=0      1: pg_stat_statements on; top statements of each Tollgate run into results/pgstat-NAME.txt
#   BENCH_CHUNK_DELAY_MS=0  the mock's pause between stream events (Mistral paces tokens; 0 sends a stream at once)
#   BENCH_PERF=           a scenario name (e.g. chat32): perf-record the proxy during it into results/perf-NAME.data
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
here=$root/deploy/bench

duration=${BENCH_DURATION:-10}
warmup=${BENCH_WARMUP:-2}
pin=${BENCH_PIN:-0}
scenarios=${BENCH_SCENARIOS:-all}
key_counts=${BENCH_KEYS:-10000 1000000}
bin=${BENCH_BIN:-$root/.build-bench/release}
want() { [ "$scenarios" = all ] || [[ " $scenarios " == *" $1 "* ]]; }
log() { printf '==> %s\n' "$*" >&2; }

# ---------------------------------------------------------------- build + tools
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  for product in tollgate tollgate-admin tollgate-mock-mistral tollgate-proxy tollgate-client-probe; do
    log "building $product (release, --scratch-path .build-bench)"
    swift build -c release --scratch-path "$root/.build-bench" --product "$product" >/dev/null
  done
fi
needed=(tollgate tollgate-admin tollgate-mock-mistral tollgate-proxy)
want client && needed+=(tollgate-client-probe)
for exe in "${needed[@]}"; do
  [ -x "$bin/$exe" ] || { echo "missing $bin/$exe" >&2; exit 1; }
done
if ! command -v nginx >/dev/null; then
  log "installing nginx from Debian"
  apt-get install -y nginx-light >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y nginx-light >/dev/null; }
fi
command -v wrk >/dev/null || { apt-get install -y wrk >/dev/null; }
nginx_bin=$(command -v nginx)

# ---------------------------------------------------------------- work dir, ports, pinning
work=$(mktemp -d /tmp/tgb.XXXXXX)      # short: holds the Postgres socket (107-byte limit)
chmod 755 "$work"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pg_port=$(free_port); mock_port=$(free_port); nginx_port=$(free_port); proxy_port=$(free_port); proxy2_port=$(free_port)
if [ "$pin" = 1 ]; then
  load_pin=(taskset -c 1); sut_pin=(taskset -c 0)
else
  load_pin=(); sut_pin=()
fi

pids=()
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pgbin=$(pg_config --bindir)
# A run's own folder under BENCH_JOURNAL_DIR, removed with the work dir.
journal_root=$work; [ -n "${BENCH_JOURNAL_DIR:-}" ] && journal_root=$BENCH_JOURNAL_DIR/tollgate-bench.$$
cleanup() {
  set +e
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null
  wait 2>/dev/null
  as_pg "$pgbin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1
  if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "work dir kept: $work" >&2; else rm -rf "$work" "$journal_root"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- Postgres (stock durability)
log "Postgres 127.0.0.1:$pg_port (stock: fsync=on, synchronous_commit=on) ${BENCH_PG_OPTS:-}${BENCH_PG_NICE:+ nice $BENCH_PG_NICE}"
mkdir -p "$work/pg" "$work/s"; [ "$(id -u)" = 0 ] && chown postgres "$work/pg" "$work/s"
as_pg "$pgbin/initdb" -D "$work/pg" -U tollgate -A trust --no-sync >/dev/null
pg_stats_opts=""; [ "${BENCH_PG_STATS:-0}" = 1 ] && pg_stats_opts="-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all"
pg_nice=(); [ -n "${BENCH_PG_NICE:-}" ] && pg_nice=(nice -n "$BENCH_PG_NICE")
as_pg "${pg_nice[@]}" "$pgbin/pg_ctl" -D "$work/pg" -l "$work/pg/server.log" -w \
  -o "-p $pg_port -k $work/s -c listen_addresses=127.0.0.1 -c max_connections=200 $pg_stats_opts ${BENCH_PG_OPTS:-}" start >/dev/null
psql_() { psql -h 127.0.0.1 -p "$pg_port" -U tollgate -d "${PGDB:-tollgate}" -v ON_ERROR_STOP=1 -qtAX "$@"; }
PGDB=postgres psql_ -c "CREATE DATABASE tollgate"
[ "${BENCH_PG_STATS:-0}" = 1 ] && psql_ -c "CREATE EXTENSION pg_stat_statements"
export DATABASE_URL="postgres://tollgate@127.0.0.1:$pg_port/tollgate?sslmode=disable"

"$bin/tollgate" generate-secrets > "$work/secrets.env"
set -a; . "$work/secrets.env"; set +a
"$bin/tollgate" migrate >/dev/null
admin_token=$("$bin/tollgate" bootstrap --name bench | grep -o "tg_admin_[A-Za-z0-9]*" | head -n 1)

# ---------------------------------------------------------------- mock + nginx
mock_key=sk-mock-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
log "mock 127.0.0.1:$mock_port (latency 0, request log off)"
"$bin/tollgate-mock-mistral" --port "$mock_port" --accept-key "$mock_key" --latency-ms 0 --chunk-delay-ms "${BENCH_CHUNK_DELAY_MS:-0}" \
  --log-capacity 0 --quiet > "$work/mock.log" 2>&1 & pids+=($!); mock_pid=$!

mkdir -p "$work/nginx"; chmod 777 "$work/nginx"
cat > "$work/nginx.conf" <<NGINX
worker_processes auto;
pid $work/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body; proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fcgi; uwsgi_temp_path $work/nginx/uwsgi; scgi_temp_path $work/nginx/scgi;
  upstream mock { server 127.0.0.1:$mock_port; keepalive 512; }
  server {
    listen 127.0.0.1:$nginx_port backlog=4096;
    client_max_body_size 10m;
    client_body_buffer_size 1m;
    keepalive_requests 1000000;
    location / {
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;        # stream SSE as it arrives, like a gateway must
    }
  }
}
NGINX
log "nginx 127.0.0.1:$nginx_port → mock"
"${sut_pin[@]}" "$nginx_bin" -c "$work/nginx.conf" -p "$work/nginx"

# ---------------------------------------------------------------- proxy + tenant + key (admin API)
export TOLLGATE_ALLOW_PRIVATE_UPSTREAMS=true LOG_LEVEL=${LOG_LEVEL:-info}
admin_port=$(free_port)
TOLLGATE_ADMIN_PORT=$admin_port TOLLGATE_MIGRATE_ON_START=false "$bin/tollgate-admin" > "$work/admin.log" 2>&1 &
admin_pid=$!; pids+=($admin_pid)
start_proxy() {  # port id → pid
  TOLLGATE_PROXY_PORT=$1 TOLLGATE_PROXY_ID=$2 TOLLGATE_JOURNAL_DIR=$journal_root/journal-$2 \
    "${sut_pin[@]}" "$bin/tollgate-proxy" > "$work/proxy-$2.log" 2>&1 &
  echo $!
}
wait_http() { for _ in $(seq 1 150); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.2; done; echo "not up: $1" >&2; return 1; }
# A proxy started through $(start_proxy) is not this shell's child: `wait` cannot wait for it.
stop_proxy() { kill "$1" 2>/dev/null || true; for _ in $(seq 1 300); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.05; done; echo "proxy $1 still running" >&2; }
proxy_pid=$(start_proxy "$proxy_port" bench-1); pids+=($proxy_pid)
wait_http "http://127.0.0.1:$admin_port/healthz"; wait_http "http://127.0.0.1:$proxy_port/healthz"
wait_http "http://127.0.0.1:$mock_port/_mock/health"; wait_http "http://127.0.0.1:$nginx_port/_mock/health"

api() { curl -fsS -H "Authorization: Bearer $admin_token" -H 'Content-Type: application/json' "$@"; }
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
tenant=$(api -X POST "http://127.0.0.1:$admin_port/v1/tenants" \
  -d '{"slug":"bench","name":"Benchmark","currency":"USD","budget":{"amount":"1000000000.00","period":"lifetime"}}' | json "['id']")
printf '{"name":"mock","baseUrl":"http://127.0.0.1:%s","secret":"%s"}' "$mock_port" "$mock_key" \
  | api -X POST "http://127.0.0.1:$admin_port/v1/tenants/$tenant/credentials" -d @- >/dev/null
vkey_json=$(api -X POST "http://127.0.0.1:$admin_port/v1/tenants/$tenant/keys" \
  -d '{"name":"bench","budget":{"amount":"1000000000.00","period":"lifetime"}}')
vkey=$(json "['secret']" <<<"$vkey_json"); vkey_id=$(json "['key']['id']" <<<"$vkey_json")
# Limits on both the key and its tenant, high enough never to trip, so every request pays for the
# requests/min, tokens/min and concurrency checks as well as the budget hold.
never_trip='{"requestsPerMinute":10000000,"tokensPerMinute":2000000000,"maxConcurrent":100000}'
api -X PUT "http://127.0.0.1:$admin_port/v1/tenants/$tenant/limits" -d "$never_trip" >/dev/null
api -X PUT "http://127.0.0.1:$admin_port/v1/tenants/$tenant/keys/$vkey_id/limits" -d "$never_trip" >/dev/null
kill "$admin_pid"; wait "$admin_pid" 2>/dev/null || true   # not on the data path: keep it off the CPU
log "tenant $tenant, key ${vkey:0:12}…"

# ---------------------------------------------------------------- request bodies
python3 - "$work" <<'PY'
import json, sys
w = sys.argv[1]
system = "You are a concise assistant for an internal engineering team. Answer in plain English."
user = ("Summarise the trade-offs between optimistic and pessimistic concurrency control for a "
        "budget ledger that many API gateway replicas update at the same time. ") * 3
chat = {"model": "mistral-small-latest", "max_tokens": 256, "temperature": 0.2,
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}]}
open(f"{w}/chat.json", "w").write(json.dumps(chat))
open(f"{w}/stream.json", "w").write(json.dumps(dict(chat, stream=True)))
inputs = [f"Document {i}: the quarterly report covers revenue, churn, support tickets and roadmap items." for i in range(64)]
open(f"{w}/embed.json", "w").write(json.dumps({"model": "mistral-embed", "input": inputs}))
PY
for f in chat embed; do   # sanity: every path answers 200 before measuring
  for port_key in "$mock_port:$mock_key" "$nginx_port:$mock_key" "$proxy_port:$vkey"; do
    path=/v1/chat/completions; [ $f = embed ] && path=/v1/embeddings
    code=$(curl -s -o "$work/probe.out" -w '%{http_code}' "http://127.0.0.1:${port_key%%:*}$path" \
      -H "Authorization: Bearer ${port_key#*:}" -H 'Content-Type: application/json' --data-binary @"$work/$f.json")
    [ "$code" = 200 ] || { echo "probe $f via port ${port_key%%:*}: HTTP $code: $(head -c 300 "$work/probe.out")" >&2; exit 1; }
  done
done

# ---------------------------------------------------------------- measurement helpers
mkdir -p "$work/out"
ctx="$work/context.json"
python3 - "$ctx" <<PY
import json, sys, os
json.dump({"duration_s": $duration, "warmup_s": $warmup, "pin": $pin, "cpus": os.cpu_count(),
           "postgres": "15, stock settings (fsync=on, synchronous_commit=on) ${BENCH_PG_OPTS:-}${BENCH_PG_NICE:+ nice $BENCH_PG_NICE}",
           "proxy_pid": $proxy_pid, "key_id": "$vkey_id", "tenant_id": "$tenant"}, open(sys.argv[1], "w"))
PY
proxy_pids() { echo "${active_proxy_pids:-$proxy_pid}"; }
# Processes whose CPU and RSS are sampled: the proxy(s) for tollgate, nginx's workers for nginx.
sut_pids() {
  case $1 in
    tollgate) proxy_pids ;;
    nginx) pgrep -d, -P "$(cat "$work/nginx.pid")" ;;
    *) echo "" ;;
  esac
}
active_proxy_pids=$proxy_pid
sample_idle() {  # idle RSS of the proxy right after start + the probes
  python3 "$here/measure.py" idle --pids "$(proxy_pids)" --out "$work/out/idle.json"
}
# run_wrk NAME PATH_LABEL PORT KEY BODY CONNS [URLPATH]
run_wrk() {
  local name=$1 label=$2 port=$3 key=$4 body=$5 conns=$6 urlpath=${7:-/v1/chat/completions}
  local threads=$(( conns < 2 ? 1 : 2 ))
  log "$name / $label: $conns connection(s), ${duration}s"
  local env=(BENCH_PATH=$urlpath BENCH_KEY=$key BENCH_BODY=$work/$body.json)
  [ -n "${keys_file:-}" ] && env+=(BENCH_KEYS_FILE=$keys_file)
  if [ "$warmup" != 0 ]; then
    env "${env[@]}" BENCH_OUT=/dev/null "${load_pin[@]}" wrk -t"$threads" -c"$conns" -d"${warmup}s" --timeout 10s \
      -s "$here/bench.lua" "http://127.0.0.1:$port" >/dev/null
  fi
  local before=""
  if [ "$label" = tollgate ]; then
    before=$(ledger_snapshot)
    curl -fsS "http://127.0.0.1:$port/metrics" > "$work/out/$name.metrics-before.txt" 2>/dev/null || true
    [ "${BENCH_PG_STATS:-0}" = 1 ] && psql_ -c "SELECT pg_stat_statements_reset()" >/dev/null
  fi
  local perf_pid=""
  if [ "$label" = tollgate ] && [ "${BENCH_PERF:-}" = "$name" ]; then   # optional CPU profile of the proxy
    perf record -F 499 -g -p "$(proxy_pids)" -o "$here/results/perf-$name.data" >/dev/null 2>&1 & perf_pid=$!
  fi
  local db_pids=""   # Postgres backends (the proxy's pooled connections): CPU the database spends per request
  [ "$label" = tollgate ] && db_pids=$(pgrep -d, -P "$(head -1 "$work/pg/postmaster.pid")" || true)
  python3 "$here/measure.py" run --pids "$(sut_pids "$label")" --db-pids "$db_pids" \
    --out "$work/out/$name.$label.json" --result "$work/out/$name.$label.wrk.json" \
    --meta "scenario=$name" --meta "path=$label" --meta "connections=$conns" -- \
    env "${env[@]}" BENCH_OUT="$work/out/$name.$label.wrk.json" "${load_pin[@]}" \
    wrk -t"$threads" -c"$conns" -d"${duration}s" --timeout 10s -s "$here/bench.lua" "http://127.0.0.1:$port" >/dev/null
  if [ -n "$perf_pid" ]; then kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true; fi
  if [ "$label" = tollgate ]; then
    curl -fsS "http://127.0.0.1:$port/metrics" > "$work/out/$name.metrics.txt" 2>/dev/null || true
    local model=mistral-small-latest; [ "$body" = embed ] && model=mistral-embed
    ledger_check "$name" "$before" "$model" "$conns"
    if [ "${BENCH_PG_STATS:-0}" = 1 ]; then   # where the database's time went during this run
      psql_ -F ' | ' -c "SELECT calls, round(total_exec_time::numeric, 1) AS ms,
          round((total_exec_time / greatest(calls, 1))::numeric * 1000, 1) AS us_per_call,
          left(regexp_replace(query, '\s+', ' ', 'g'), 110)
        FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 15" > "$here/results/pgstat-$name.txt"
    fi
  fi
  return 0
}

# Ledger check: between two snapshots, rows = requests the mock served, one 200 row per mock 200,
# Σcost = key spend = tenant spend = Σ over requests of ceil((prompt×in + completion×out)/1e6),
# computed from the mock's own usage counters; nothing left reserved once settled.
# bench_db: the database the measured proxy uses, when not the bench database itself.
ledger_args() {
  echo --psql; echo "psql -h 127.0.0.1 -p $pg_port -U tollgate -d ${bench_db:-tollgate} -qtAX"
  printf '%s\n' --mock "http://127.0.0.1:$mock_port" --key "$vkey_id" --tenant "$tenant"
}
ledger_snapshot() { local args; mapfile -t args < <(ledger_args); python3 "$here/measure.py" snapshot "${args[@]}"; }
ledger_check() {  # NAME BEFORE MODEL CONNS
  local args; mapfile -t args < <(ledger_args)
  python3 "$here/measure.py" ledger "${args[@]}" --name "$1" --before "$2" --model "$3" --conns "$4" \
    --out "$work/out/$1.ledger.json" --wrk "$work/out/$1.tollgate.wrk.json" ${several_keys:+--many-keys}
}

sample_idle

mkdir -p "$here/results"
# ---------------------------------------------------------------- scenarios
paths=("direct:$mock_port:$mock_key" "nginx:$nginx_port:$mock_key" "tollgate:$proxy_port:$vkey")
for spec in "chat1:chat:1" "chat32:chat:32" "chat128:chat:128" "embed1:embed:1" "embed32:embed:32"; do
  IFS=: read -r name body conns <<<"$spec"
  base=${name%%[0-9]*}; [ "$base" = embed ] && { want embed || continue; } || { want "$name" || continue; }
  urlpath=/v1/chat/completions; [ "$body" = embed ] && urlpath=/v1/embeddings
  for p in "${paths[@]}"; do
    IFS=: read -r label port key <<<"$p"
    run_wrk "$name" "$label" "$port" "$key" "$body" "$conns" "$urlpath"
  done
done

# The upstream HTTP client by itself, against the same mock with no proxy: AsyncHTTPClient as the
# proxy uses it and through its delegate API, and a bare SwiftNIO connection (the floor for any
# client on this stack) flushing once or flushing the head alone first.
if want client; then
  log "client: the upstream HTTP client alone, c1 and c32, $(( duration / 2 ))s per run"
  "${load_pin[@]}" "$bin/tollgate-client-probe" "$mock_port" "$work/chat.json" "$mock_key" "$(( duration / 2 ))" 1 32 \
    > "$work/out/client.probe.jsonl"
fi

if want stream; then
  for p in "${paths[@]}"; do
    IFS=: read -r label port key <<<"$p"
    log "stream / $label: 1 connection, ${duration}s"
    before=""
    if [ "$label" = tollgate ]; then
      before=$(ledger_snapshot)
      curl -fsS "http://127.0.0.1:$port/metrics" > "$work/out/stream.metrics-before.txt" 2>/dev/null || true
    fi
    perf_pid=""
    if [ "$label" = tollgate ] && [ "${BENCH_PERF:-}" = stream ]; then
      perf record -F 499 -g -p "$(proxy_pids)" -o "$here/results/perf-stream.data" >/dev/null 2>&1 & perf_pid=$!
    fi
    python3 "$here/measure.py" run --pids "$(sut_pids "$label")" \
      --out "$work/out/stream.$label.json" --result "$work/out/stream.$label.raw.json" \
      --meta scenario=stream --meta "path=$label" --meta connections=1 -- \
      sh -c "${load_pin[*]} python3 '$here/stream_client.py' --port $port --key '$key' --body '$work/stream.json' \
             --duration $duration > '$work/out/stream.$label.raw.json'"
    if [ -n "$perf_pid" ]; then kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true; fi
    if [ "$label" = tollgate ]; then
      curl -fsS "http://127.0.0.1:$port/metrics" > "$work/out/stream.metrics.txt" 2>/dev/null || true
      cp "$work/out/stream.tollgate.raw.json" "$work/out/stream.tollgate.wrk.json"
      ledger_check stream "$before" mistral-small-latest 1
    fi
  done
fi

if want keys; then
  # Key lookup cost against the size of the key table. Every bulk key has a known secret
  # (deploy/bench/keys.py), so the load generator can send each request with a key the proxy has
  # not seen: a cold run pays one real lookup per request, a hot run (the bench key, cached) none.
  # Each size has a database of its own (a copy of the bench database), so that the sizes' runs
  # alternate, each with a proxy started fresh on it: the machine's drift over the scenario falls
  # on every size alike. The check reads the lookup's own time inside the proxy
  # (tollgate_key_lookup_seconds); the end-to-end fresh/cached ratio also pays an exact admission
  # per request, whose commit (an fsync) varies far more than a lookup can.
  seed=$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')
  probes=${BENCH_KEY_PROBES:-12000}   # fresh keys per cold run; more than a run can use at c1
  key_rounds=${BENCH_KEY_ROUNDS:-4}   # the sizes' runs alternate this many times (the noise is between runs)
  stop_proxy "$proxy_pid"   # a template must have no connections
  for n in $key_counts; do
    PGDB=postgres psql_ -c "CREATE DATABASE tollgate_keys$n TEMPLATE tollgate"
    log "keys: inserting $n keys with known secrets into database tollgate_keys$n"
    t0=$(date +%s.%N)
    PGDB=tollgate_keys$n psql_ -c "CREATE UNLOGGED TABLE bench_keys_stage (id uuid, key_hash bytea, display_prefix text, name text)"
    python3 "$here/keys.py" rows --from 1 --to "$n" --seed "$seed" \
      | PGDB=tollgate_keys$n psql_ -c "\copy bench_keys_stage FROM STDIN (FORMAT csv)"
    # Triggers off for the bulk load: a million change notifications would only measure LISTEN.
    PGDB=tollgate_keys$n psql_ <<SQL
SET session_replication_role = replica;
INSERT INTO virtual_keys (id, tenant_id, name, display_prefix) SELECT id, '$tenant', name, display_prefix FROM bench_keys_stage;
INSERT INTO virtual_key_secrets (key_hash, key_id, tenant_id, display_prefix) SELECT key_hash, id, '$tenant', display_prefix FROM bench_keys_stage;
DROP TABLE bench_keys_stage;
SQL
    # Flushed now: a checkpoint writing the bulk load back during the runs would be measured too.
    PGDB=tollgate_keys$n psql_ -c "VACUUM ANALYZE virtual_keys" -c "VACUUM ANALYZE virtual_key_secrets" -c "CHECKPOINT"
    log "keys: inserted in $(python3 -c "print(round($(date +%s.%N) - $t0, 1))") s"
    # Fresh keys for the cold runs, drawn from the whole table: a set per round, disjoint when the
    # table is large enough (else drawn again for each round: each run's proxy starts empty).
    per_run=$(( probes < n ? probes : n ))
    if [ $(( key_rounds * per_run )) -le "$n" ]; then
      python3 "$here/keys.py" sample --upto "$n" --count $(( key_rounds * per_run )) --seed "$seed" > "$work/probes$n.txt"
      for r in $(seq 1 "$key_rounds"); do
        sed -n "$(( (r - 1) * per_run + 1 )),$(( r * per_run ))p" "$work/probes$n.txt" > "$work/probes$n.$r.txt"
      done
    else
      for r in $(seq 1 "$key_rounds"); do
        python3 "$here/keys.py" sample --upto "$n" --count "$per_run" --seed "$seed" --draw "$r" > "$work/probes$n.$r.txt"
      done
    fi
    # Database-side cost of one lookup (the proxy's exact query) of keys not looked up before,
    # 200 of them drawn from the whole table; median.
    PGDB=tollgate_keys$n psql_ -c "SELECT encode(key_hash,'hex') FROM virtual_key_secrets ORDER BY random() LIMIT 220" \
      > "$work/lookup-hashes$n.txt"
    PGDB=tollgate_keys$n psql_ > "$work/out/keys$n.lookup.txt" <<SQL
PREPARE lk(bytea) AS SELECT k.id, k.tenant_id, k.name, k.status, (k.expires_at IS NOT NULL AND k.expires_at <= now()),
       t.status, t.currency, k.allowed_models, k.allowed_endpoints, k.credential_ids, k.default_max_tokens,
       k.rpm_limit, k.tpm_limit, k.max_concurrent, t.wrapped_data_key, s.valid_until
  FROM virtual_key_secrets s JOIN virtual_keys k ON k.id = s.key_id JOIN tenants t ON t.id = k.tenant_id
  WHERE s.key_hash = \$1 AND (s.valid_until IS NULL OR s.valid_until > now());
\o /dev/null
$(head -n 20 "$work/lookup-hashes$n.txt" | while read -r h; do echo "EXPLAIN (ANALYZE, TIMING OFF) EXECUTE lk('\\x$h');"; done)
\o
$(tail -n +21 "$work/lookup-hashes$n.txt" | while read -r h; do echo "EXPLAIN (ANALYZE, SUMMARY ON, TIMING OFF) EXECUTE lk('\\x$h');"; done)
SQL
  done
  for round in $(seq 1 "$key_rounds"); do
    for n in $key_counts; do
      # A fresh proxy on this size's database: nothing cached from an earlier run.
      proxy_pid=$(DATABASE_URL="postgres://tollgate@127.0.0.1:$pg_port/tollgate_keys$n?sslmode=disable" \
        start_proxy "$proxy_port" "bench-keys$n"); pids+=($proxy_pid); active_proxy_pids=$proxy_pid
      wait_http "http://127.0.0.1:$proxy_port/healthz"
      bench_db=tollgate_keys$n run_wrk "keys${n}hot$round" tollgate "$proxy_port" "$vkey" chat 1
      # No warm-up here: it would use up (and cache) the run's fresh keys; the hot run warmed up.
      bench_db=tollgate_keys$n keys_file=$work/probes$n.$round.txt warmup=0 several_keys=1 \
        run_wrk "keys${n}cold$round" tollgate "$proxy_port" "$vkey" chat 1
      stop_proxy "$proxy_pid"
    done
  done
  proxy_pid=$(start_proxy "$proxy_port" bench-1); pids+=($proxy_pid); active_proxy_pids=$proxy_pid
  wait_http "http://127.0.0.1:$proxy_port/healthz"
fi

if want replicas; then
  proxy2_pid=$(start_proxy "$proxy2_port" bench-2); pids+=($proxy2_pid)
  wait_http "http://127.0.0.1:$proxy2_port/healthz"
  active_proxy_pids="$proxy_pid,$proxy2_pid"
  for conns in 32 128; do
    name=replicas$conns; half=$(( conns / 2 ))
    log "$name / tollgate×2: $half + $half connections, ${duration}s"
    env=(BENCH_PATH=/v1/chat/completions BENCH_KEY=$vkey BENCH_BODY=$work/chat.json)
    if [ "$warmup" != 0 ]; then
      wpids=()
      for port in $proxy_port $proxy2_port; do
        env "${env[@]}" BENCH_OUT=/dev/null "${load_pin[@]}" wrk -t1 -c"$half" -d"${warmup}s" -s "$here/bench.lua" "http://127.0.0.1:$port" >/dev/null &
        wpids+=($!)
      done
      wait "${wpids[@]}"
    fi
    before=$(ledger_snapshot)
    python3 "$here/measure.py" run --pids "$active_proxy_pids" --out "$work/out/$name.tollgate.json" \
      --result "$work/out/$name.tollgate.wrk.json" --result2 "$work/out/$name.b.wrk.json" \
      --meta "scenario=$name" --meta path=tollgate --meta "connections=$conns" -- sh -c "
      env ${env[*]} BENCH_OUT=$work/out/$name.tollgate.wrk.json ${load_pin[*]} wrk -t1 -c$half -d${duration}s --timeout 10s -s $here/bench.lua http://127.0.0.1:$proxy_port >/dev/null &
      env ${env[*]} BENCH_OUT=$work/out/$name.b.wrk.json ${load_pin[*]} wrk -t1 -c$half -d${duration}s --timeout 10s -s $here/bench.lua http://127.0.0.1:$proxy2_port >/dev/null &
      wait"
    ledger_check "$name" "$before" mistral-small-latest "$conns"
  done
fi

# ---------------------------------------------------------------- report
mkdir -p "$here/results"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
python3 "$here/report.py" --work "$work" --context "$ctx" --json "$here/results/bench-$stamp.json"
