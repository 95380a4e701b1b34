#!/usr/bin/env bash
# Measures the gateway's intake against a bare JetStream publish to the same NATS server, in the same run,
# and prints the ratios: the machines are shared and noisy, so only the ratios mean anything.
#   scripts/bench.sh [count]   (default 5 runs of each)
#
# isolated:   gateway/internal/httpapi, the gateway alone (key checks answered by a stub gRPC server).
# full stack: deploy/e2e, the whole of Herald running, the approval service storing and mailing each post.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-5}

ratio() { # $1: label, $2: benchmark name, rest: go test output
  local label=$1 name=$2
  shift 2
  echo "$*" | awk -v label="$label" -v name="$name" '
    $1 ~ name"/jetstream" { js[nj++] = $3 }
    $1 ~ name"/gateway"   { gw[ng++] = $3 }
    function median(a, n,   i, j, t) {
      for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
      return (n % 2) ? a[int(n/2)] : (a[n/2-1] + a[n/2]) / 2
    }
    END {
      if (nj == 0 || ng == 0) { print label ": no benchmark results"; exit 1 }
      mj = median(js, nj); mg = median(gw, ng)
      printf "%s: median ns/op jetstream publish %.0f, gateway POST /v1/posts %.0f; gateway/jetstream = %.2fx\n", label, mj, mg, mg / mj
    }'
}

isolated=$(cd gateway && go test -run '^$' -bench 'BenchmarkGatewayIntake' -benchtime 2000x -count "$count" ./internal/httpapi/)
echo "$isolated" | grep -E '^Benchmark'
full=$(cd deploy && go test -run '^$' -bench 'BenchmarkIntake' -benchtime 2000x -count "$count" ./e2e/)
echo "$full" | grep -E '^Benchmark'
ratio "isolated" "BenchmarkGatewayIntake" "$isolated"
ratio "full stack" "BenchmarkIntake" "$full"
