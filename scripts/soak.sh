#!/usr/bin/env bash
# Soak: pushes many approved posts through a real publisher process while killing it with SIGKILL and
# restarting it, with sandbox faults queued at every start, then prints posted, duplicates, lost, unknown
# and failed. Arguments go to the soak program (defaults: -posts 1000 -kills 5).
#   scripts/soak.sh [-posts N] [-kills K] [-faults F]
set -euo pipefail
cd "$(dirname "$0")/.."
go run ./services/publisher/internal/crashtest/soak "$@"
