#!/usr/bin/env bash
# Regenerates every piece of generated code: protobuf/gRPC (buf) and the SQL stores (sqlc).
# The generators are pinned in scripts/tools/go.mod and run through `go tool`, so a fresh machine needs
# nothing but Go (the first run builds them, which takes a few minutes).
set -euo pipefail
cd "$(dirname "$0")/.."

go tool buf lint
go tool buf generate
go tool sqlc generate
