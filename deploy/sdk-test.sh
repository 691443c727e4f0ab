#!/usr/bin/env bash
# End-to-end test of the proxy with the official client SDKs (Python `mistralai` 3.x and `openai`):
#   1. installs Tests/sdk/requirements.txt (pinned) into a venv, reused while the pins are unchanged;
#   2. starts a throwaway stack with deploy/dev.sh (own dev dir, free ports, mock Mistral upstream)
#      and waits for it to be up (the first debug build may take many minutes);
#   3. runs pytest on Tests/sdk against it;
#   4. always stops the stack (SIGINT to dev.sh's process group, so its trap stops Postgres and the
#      servers), removes the dev dir, and exits with pytest's status.
# Usage: deploy/sdk-test.sh [pytest args]          e.g. deploy/sdk-test.sh -k stream -x
# Env:   SDK_TEST_START_TIMEOUT  seconds for build + start (default 1800)
#        SDK_TEST_PYTEST_TIMEOUT seconds for pytest (default 600)
#        SDK_TEST_VENV           venv dir (default .build/sdk-venv)
#        SDK_TEST_PYTHON         interpreter for the venv (default python3)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
start_timeout=${SDK_TEST_START_TIMEOUT:-1800}
pytest_timeout=${SDK_TEST_PYTEST_TIMEOUT:-600}
venv=${SDK_TEST_VENV:-$root/.build/sdk-venv}
python=${SDK_TEST_PYTHON:-python3}
requirements=$root/Tests/sdk/requirements.txt
say() { echo "sdk-test: $*" >&2; }

# --- 1. Python requirements -------------------------------------------------------------------
want=$(sha256sum "$requirements" | cut -d' ' -f1)
if [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$want" ] \
   || ! "$venv/bin/python" -c 'import mistralai.client, openai, pytest' 2>/dev/null; then
  say "installing $(tr '\n' ' ' < "$requirements")into $venv"
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  timeout --foreground 120 "$python" -m venv "$venv"
  timeout --foreground 600 "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    --no-input -r "$requirements"
  echo "$want" > "$venv/.requirements.sha256"
fi

# --- 2. the stack ------------------------------------------------------------------------------
read -r admin_port proxy_port mock_port pg_port < <("$python" - <<'PY'
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
PY
)
dir=$(mktemp -d /tmp/tollgate-sdk-XXXXXX)
log=$(mktemp /tmp/tollgate-sdk-log-XXXXXX)
dev_pid=
SECONDS=0
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

stop_stack() {
  if [ -n "$dev_pid" ]; then
    # dev.sh runs in its own session: its pid is the process group id of everything it started.
    kill -INT -- "-$dev_pid" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 -- "-$dev_pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 -- "-$dev_pid" 2>/dev/null; then
      say "the stack did not stop within 30 s of SIGINT; killing it"
      kill -TERM -- "-$dev_pid" 2>/dev/null || true
      sleep 2
      kill -KILL -- "-$dev_pid" 2>/dev/null || true
    fi
    wait "$dev_pid" 2>/dev/null || true
    dev_pid=
  fi
  # Postgres outlives a dev.sh that died before its trap ran: stop it by its data dir.
  if [ -f "$dir/pg/postmaster.pid" ]; then
    as_pg "$(pg_config --bindir)/pg_ctl" -D "$dir/pg" -m immediate -t 20 stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir" "$log"
}
on_signal() { say "interrupted"; exit 130; }
trap stop_stack EXIT
trap on_signal INT TERM

say "starting the stack in $dir (admin :$admin_port, proxy :$proxy_port, mock :$mock_port, pg :$pg_port)"
# setsid: a process group of its own to signal as a whole; timeout: a dead man's switch in case
# this script is killed before its trap runs (SIGINT lets dev.sh's own trap stop Postgres).
env -u MISTRAL_API_KEY TOLLGATE_DEV_DIR="$dir" TOLLGATE_ADMIN_PORT="$admin_port" \
  TOLLGATE_PROXY_PORT="$proxy_port" TOLLGATE_MOCK_PORT="$mock_port" TOLLGATE_PG_PORT="$pg_port" \
  setsid timeout -s INT -k 30 $((start_timeout + pytest_timeout + 120)) deploy/dev.sh \
  > "$log" 2>&1 < /dev/null &
dev_pid=$!

deadline=$((SECONDS + start_timeout))
until grep -q 'Press Ctrl-C' "$log"; do
  if ! kill -0 "$dev_pid" 2>/dev/null; then
    say "deploy/dev.sh exited before the stack was up; its log:"; cat "$log" >&2
    # dev.sh sends swift build's stdout (where compiler errors go) to /dev/null.
    tail -n 1 "$log" | grep -q '==> building\|CMakeLists.txt' && say "it stopped while building: run 'swift build' to see why"
    exit 1
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    say "the stack was not up after ${start_timeout}s; dev.sh log:"; cat "$log" >&2; exit 1
  fi
  sleep 1
done
say "stack up after ${SECONDS}s"

# --- 3. the tests ------------------------------------------------------------------------------
status=0
PYTHONDONTWRITEBYTECODE=1 \
TOLLGATE_PROXY_URL="http://127.0.0.1:$proxy_port" \
TOLLGATE_ADMIN_URL="http://127.0.0.1:$admin_port" \
TOLLGATE_VIRTUAL_KEY="$(cat "$dir/demo-key")" \
TOLLGATE_ADMIN_TOKEN="$(cat "$dir/admin-token")" \
  timeout --foreground -k 10 "$pytest_timeout" "$venv/bin/python" -m pytest Tests/sdk \
    --rootdir "$root/Tests/sdk" -p no:cacheprovider -v "$@" || status=$?
if [ "$status" -ne 0 ]; then
  [ "$status" -eq 124 ] && say "pytest did not finish within ${pytest_timeout}s"
  say "pytest exited with $status; last lines of the stack's log:"
  tail -n 60 "$log" >&2
fi
exit "$status"
