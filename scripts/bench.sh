#!/usr/bin/env bash
# Measures Herald on this machine against baselines taken in the same run (the machines are shared and
# noisy, so the ratios are what travel): intake under load, the pipeline behind it, decision to post,
# storage at scale and footprint. Prints Markdown tables and writes JSON to scripts/bench/results/.
#
#   scripts/bench.sh -quick                 # under a minute: a smoke run of every benchmark
#   scripts/bench.sh                        # the full run (about 10 minutes on 2 cores)
#   scripts/bench.sh -seconds 10s intake    # one benchmark; `go run ./deploy/bench -h` lists the flags
#
# PostgreSQL (127.0.0.1:5432, database test, or HERALD_TEST_DATABASE_URL) is used in fresh schemas that
# are dropped after; without it those halves are skipped and the output says so. -cpuprofile FILE
# writes a CPU profile of each benchmark to FILE-<benchmark>.pprof (Herald runs in the benchmark's process).
set -euo pipefail
cd "$(dirname "$0")/.."
exec go run ./deploy/bench "$@"
