#!/usr/bin/env bash
# Measures the gateway's intake against a bare JetStream publish to the same NATS server, in the same run,
# and prints the ratio: the machines are shared and noisy, so only the ratio means anything.
#   scripts/bench.sh [count]   (default 5 runs of each)
set -euo pipefail
cd "$(dirname "$0")/../deploy"
count=${1:-5}
out=$(go test -run '^$' -bench 'BenchmarkIntake' -benchtime 2000x -count "$count" ./e2e/)
echo "$out" | grep -E '^Benchmark'
echo "$out" | awk '
  /BenchmarkIntake\/jetstream/ { js[nj++] = $3 }
  /BenchmarkIntake\/gateway/   { gw[ng++] = $3 }
  function median(a, n,   i, j, t) {
    for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return (n % 2) ? a[int(n/2)] : (a[n/2-1] + a[n/2]) / 2
  }
  END {
    if (nj == 0 || ng == 0) { print "no benchmark results"; exit 1 }
    mj = median(js, nj); mg = median(gw, ng)
    printf "median ns/op: jetstream publish %.0f, gateway POST /v1/posts %.0f; gateway/jetstream = %.2fx\n", mj, mg, mg / mj
  }'
