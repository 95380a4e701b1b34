#!/usr/bin/env bash
# The publisher's crash windows, all of them: a real publisher process killed with SIGKILL after the ledger
# write and before the X call, after the call and before the ledger write, and after the outcome and before
# the acknowledgement; after each restart the sandbox must hold the post exactly once (or the ledger say
# unknown). scripts/test.sh runs only the second window; this takes a couple of minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
cd services/publisher
HERALD_CRASHTEST_ALL=1 go test -race -count=1 -run TestCrashWindows -v ./internal/crashtest/
