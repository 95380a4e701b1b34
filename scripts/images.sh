#!/usr/bin/env bash
# Builds Herald's container images, one per service (herald-gateway, herald-approval, herald-publisher),
# with podman or docker, whichever is present (podman first). Each binary is built here with
# CGO_ENABLED=0 and copied into a scratch image (deploy/image/Containerfile); the image build runs with
# no network and no cache (buildah 4.3 reuses a cached LABEL step whose build arguments changed).
#
#   scripts/images.sh                      # tags <repo>/herald-<service>:<version>
#   IMAGE_REPO=registry.example/herald VERSION=1.2.0 scripts/images.sh
#
# IMAGE_REPO defaults to ghcr.io/heraldhq, VERSION to `git describe --tags --always --dirty`,
# CONTAINER_ENGINE to podman or docker, GOARCH to the machine's. It prints each image and its size.
set -euo pipefail
cd "$(dirname "$0")/.."

engine=${CONTAINER_ENGINE:-}
if [[ -z "$engine" ]]; then
  if command -v podman >/dev/null 2>&1; then
    engine=podman
  elif command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    engine=docker
  else
    echo "images.sh: neither podman nor a running docker was found (apt-get install podman)" >&2
    exit 2
  fi
fi
repo=${IMAGE_REPO:-ghcr.io/heraldhq}
version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
source_url=https://github.com/heraldhq/herald
certs=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
if [[ ! -s "$certs" ]]; then
  echo "images.sh: no CA bundle at $certs (apt-get install ca-certificates, or set CA_BUNDLE)" >&2
  exit 2
fi

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp "$certs" "$ctx/ca-certificates.crt"
cp deploy/image/Containerfile "$ctx/Containerfile"

declare -A main=(
  [gateway]=./gateway/cmd/herald-gateway
  [approval]=./services/approval/cmd/herald-approval
  [publisher]=./services/publisher/cmd/herald-publisher
)
for svc in gateway approval publisher; do
  CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags='-s -w' -o "$ctx/herald-$svc" "${main[$svc]}"
done
# podman keeps an intermediate image per step unless told not to; they would pile up build after build.
flags=()
if [[ "$engine" == podman ]]; then flags=(--layers=false); fi
for svc in gateway approval publisher; do
  image="$repo/herald-$svc:$version"
  "$engine" build --quiet --no-cache --network=none "${flags[@]}" --file "$ctx/Containerfile" \
    --build-arg SERVICE="$svc" --build-arg VERSION="$version" --build-arg REVISION="$revision" \
    --build-arg SOURCE="$source_url" --tag "$image" "$ctx" >/dev/null
  size=$("$engine" image inspect --format '{{.Size}}' "$image")
  printf '%s\t%s bytes\n' "$image" "$size"
done
