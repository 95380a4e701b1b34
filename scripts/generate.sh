#!/usr/bin/env bash
# Regenerates every piece of generated code: protobuf/gRPC (buf) and the SQL stores (sqlc).
# The generators are pinned in scripts/tools: sqlc and the protoc plugins in go.mod (run through `go tool`,
# built on first use), buf in go.mod and package.json (scripts/buf runs npm's prebuilt binary when npm is
# present, else `go tool buf`), so a fresh machine needs nothing but Go.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/buf lint
scripts/buf generate
go tool sqlc generate
