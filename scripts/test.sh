#!/usr/bin/env bash
# Herald's test command (the README's, and CI's through .ci/run): formatting, vet, buf lint, generated-code
# drift, then `go test -race` of every module, the end-to-end test included.
#
# Suites that need PostgreSQL (127.0.0.1:5432, database test) or NATS (127.0.0.1:4222) skip with a
# message when those are down, except under CI=true, where they fail. The run ends with the list of
# skipped tests and why.
set -euo pipefail
cd "$(dirname "$0")/.."

modules=(proto services/heraldshared services/approval services/publisher gateway deploy deploy/k8s scripts/testsummary)

step() { printf '\n== %s\n' "$*"; }

step "gofmt"
unformatted=$(gofmt -l $(for m in "${modules[@]}"; do echo "$m"; done))
if [[ -n "$unformatted" ]]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

step "go vet"
for m in "${modules[@]}"; do (cd "$m" && go vet ./...); done

step "buf lint"
scripts/buf lint

step "generated code is up to date"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
scripts/buf generate --output "$tmp"
diff -r -x '*.proto' -x go.mod -x go.sum "$tmp/proto" proto || { echo "generated protobuf code is stale: run scripts/generate.sh and commit"; exit 1; }
echo "protobuf code matches proto/"
go tool sqlc diff || { echo "generated sqlc code is stale: run scripts/generate.sh and commit"; exit 1; }
echo "sqlc code matches the queries"

step "connector tools (Node.js): swagger-cli, twitter-text"
# swagger-cli validates the connector definition (gateway/internal/connector's TestSwaggerCLI), and
# twitter-text regenerates the tweet-length corpus; both are pinned in scripts/connector/package-lock.json.
# Without Node.js the swagger-cli test skips, except under CI=true, where this step fails.
if command -v npm >/dev/null 2>&1; then
  (cd scripts/connector && npm ci --no-audit --no-fund --loglevel=error)
  scripts/connector/node_modules/.bin/swagger-cli validate deploy/connector/apiDefinition.swagger.json
elif [[ "${CI:-}" == "true" ]]; then
  echo "Node.js and npm are required under CI=true (swagger-cli validate)"; exit 1
else
  echo "Node.js is not installed: skipping swagger-cli validate (TestSwaggerCLI skips too)"
fi

step "go test -race"
# testsummary prints what go test would (package results, failing tests' output) and ends with every
# skipped test and its reason. The pipeline fails if any go test or testsummary failed (pipefail), after
# the summary was printed.
go build -o "$tmp/testsummary" ./scripts/testsummary
summary_flags=()
for arg in "$@"; do
  if [[ "$arg" == -v || "$arg" == -test.v* || "$arg" == -v=true ]]; then summary_flags=(-v); fi
done
(
  status=0
  for m in "${modules[@]}"; do
    (cd "$m" && go test -json -race -count=1 "$@" ./...) || status=1
  done
  exit $status
) | "$tmp/testsummary" "${summary_flags[@]}"
