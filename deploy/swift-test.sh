#!/usr/bin/env bash
# Runs the (already built) Swift tests with a watchdog.
# A whole suite takes well under a minute here, so a run still going after SWIFT_TEST_LIMIT seconds
# (default 600) has hung. Instead of only killing it, the watchdog prints what is needed to find
# the cause: the tests that started and never ended, the open descriptors, and every thread's stack
# (gdb, when installed). Then it kills the test process and fails.
# Usage: deploy/swift-test.sh [swift test args]
set -uo pipefail
cd "$(dirname "$0")/.."
limit=${SWIFT_TEST_LIMIT:-600}
log=$(mktemp "${TMPDIR:-/tmp}/tollgate-swift-test.XXXXXX")
trap 'rm -f "$log"' EXIT

# The suite holds about 1,900 descriptors at its peak (every test runs at once); the test process
# raises its soft limit too, this covers the tools it starts.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
echo "swift-test: open-file limit $(ulimit -n), watchdog after ${limit} s"

swift test --skip-build --parallel "$@" > >(tee "$log") 2>&1 &
runner=$!

report() {
  # Stacks first, the summary last: a log cut to its tail still names the stuck tests.
  local pids
  pids=$(pgrep -f 'PackageTests\.xctest' || true)
  for pid in $pids; do
    if command -v gdb > /dev/null; then
      echo "swift-test: every thread's stack in process $pid (innermost 25 frames):"
      timeout 120 gdb -p "$pid" -batch -ex 'set pagination off' -ex 'thread apply all bt 25' 2>/dev/null \
        | grep -E '^Thread |^#' | sed -E 's/ \(.*\) at / at /; s/0x[0-9a-f]+ in //' | cut -c1-200
    fi
  done
  echo "swift-test: still running after ${limit} s: treating it as hung"
  for pid in $pids; do
    echo "swift-test: process $pid: $(ls /proc/$pid/fd 2>/dev/null | wc -l) open descriptors (limit $(ulimit -n)), $(ls /proc/$pid/task | wc -l) threads"
  done
  echo "swift-test: tests that started and did not end:"
  grep -aoE '^◇ Test .* started' "$log" | sed -E 's/^◇ Test (.*) started/\1/' | sort -u > "$log.started"
  grep -aoE '^✔ Test .* passed|^✘ Test .* (failed|recorded)' "$log" \
    | sed -E 's/^(✔|✘) Test //; s/ (passed|failed|recorded)$//; s/ with [0-9]+ test cases?$//' | sort -u > "$log.ended"
  comm -23 "$log.started" "$log.ended" | sed 's/^/  /'
  rm -f "$log.started" "$log.ended"
}

waited=0
while kill -0 "$runner" 2>/dev/null; do
  sleep 2
  waited=$((waited + 2))
  if [ "$waited" -ge "$limit" ]; then
    # Taken while the process still hangs, printed once its output has ended.
    report > "$log.report" 2>&1
    pkill -KILL -f 'PackageTests\.xctest' || true
    kill -KILL "$runner" 2>/dev/null || true
    wait "$runner" 2>/dev/null
    sleep 1
    echo
    cat "$log.report"
    rm -f "$log.report"
    exit 124
  fi
done
wait "$runner"
