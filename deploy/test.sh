#!/usr/bin/env bash
# Builds and runs the whole test suite:
#   1. the Swift tests (they start their own throwaway Postgres cluster from the installed binaries,
#      as the `postgres` user when run as root, and an in-process mock Mistral server), under a
#      watchdog that prints where a hung run waits (deploy/swift-test.sh);
#   2. the official Python SDKs (`mistralai`, `openai`) against a throwaway local stack.
# A hung test binary would ignore SIGTERM, so each step is bounded with SIGKILL.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -c 'import cryptography' 2>/dev/null || pip install --quiet cryptography
timeout -s KILL 3000 swift build --build-tests
timeout -s KILL 1200 deploy/swift-test.sh
timeout -s KILL 2400 deploy/sdk-test.sh
