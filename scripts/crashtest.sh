#!/usr/bin/env bash
# The crash run: the three services as separate processes on PostgreSQL (fresh schemas of the shared
# 127.0.0.1:5432 test database, dropped after) with a nats-server of the run's own, 10,000 requests
# pushed through the gateway and approved through the emailed links, while the gateway, the approval
# service, the publisher and NATS are killed with SIGKILL and restarted at random moments, and once every
# PostgreSQL connection of the services is terminated. It prints what it counted and exits non-zero if a
# post was lost or duplicated or an approver was mailed twice about one post. Arguments go to the
# program (see -h): scripts/crashtest.sh -requests 2000 -kills 10
set -euo pipefail
cd "$(dirname "$0")/.."
go run ./deploy/chaos/cmd/herald-chaos "$@"
