#!/usr/bin/env bash
# The cluster run: three nats-server processes (own ports and data directories, routes between them,
# JetStream, R3 streams through HERALD_STREAM_REPLICAS=3), PostgreSQL, two replicas of each service
# behind readiness-aware balancers, a few thousand requests approved through the emailed links; meanwhile
# one NATS node is killed with SIGKILL and brought back, one replica of each service is killed and
# restarted, and the gateways are restarted one by one with SIGTERM. It prints what it counted, the
# requests that failed during the rolling restart and the recovery after each kill, and exits non-zero
# unless everything but accepted, decided and posted is zero. Arguments go to the program (see -h).
set -euo pipefail
cd "$(dirname "$0")/.."
go run ./deploy/chaos/cmd/herald-chaos -cluster -requests 3000 -rate 50 -kill-every 10s "$@"
