#!/usr/bin/env bash
# Installs the NATS cluster Herald uses: the official chart at a pinned version, with values.yaml, in the
# namespace nats. Needs helm and kubectl pointed at the cluster, and beforehand (README, "Running in
# production"): the Secret herald-nats-password-hashes (keys gateway, approval, publisher: bcrypt hashes
# from `nats server passwd`) and the TLS Secret nats-server-tls in that namespace.
set -euo pipefail
cd "$(dirname "$0")"

chart_version=2.14.2

kubectl create namespace nats --dry-run=client -o yaml | kubectl apply -f -
# Herald's users and permissions, generated from the code (deploy/nats/herald-auth.conf).
kubectl -n nats create configmap herald-nats-auth --from-file=herald-auth.conf=../../nats/herald-auth.conf \
  --dry-run=client -o yaml | kubectl apply -f -
helm repo add nats https://nats-io.github.io/k8s/helm/charts/ >/dev/null
helm repo update nats >/dev/null
helm upgrade --install nats nats/nats --namespace nats --version "$chart_version" --values values.yaml --wait
