#!/bin/sh
# deploy/build-images.sh — build the control plane and runner images (make images).
#
#   deploy/build-images.sh                     # official python base (needs its registry)
#   DELTACI_BASE=debian deploy/build-images.sh # base built from Debian packages: no registry
#
# Environment:
#   DELTACI_BASE      official (default: python:3.11.10-slim-bookworm) | debian (a minimal
#                     Debian with python3 made by deploy/debian-image.sh, for machines that
#                     reach no image registry; DEBIAN_MIRROR may name a local mirror)
#   CONTAINER_ENGINE  podman (default when installed) | docker (BuildKit)
#   IMAGE_PREFIX      default deltaci/  -> deltaci/control-plane:<version>, deltaci/runner:<version>
#   CA_BUNDLE         CA bundle pip trusts during the build (default: the host's), passed as a
#                     build secret, never stored in an image
#   IMAGE_LABEL       an extra label (KEY=VALUE) for every image built
# PyPI steps run with the host's network (--network host). Prints the two tags last.
set -eu
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

engine="${CONTAINER_ENGINE:-}"
if [ -z "$engine" ]; then
  if command -v podman >/dev/null 2>&1; then engine=podman; else engine=docker; fi
fi
prefix="${IMAGE_PREFIX:-deltaci/}"
ca_bundle="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
version="$(sed -n 's/^VERSION = "\(.*\)"$/\1/p' deltaci/version.py)"
runner_version="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' runner/deltaci_runner/__init__.py)"
revision="$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
[ -n "$version" ] && [ -n "$runner_version" ] || { echo "build-images: no version found" >&2; exit 1; }
[ -s "$ca_bundle" ] || { echo "build-images: CA bundle $ca_bundle is missing" >&2; exit 1; }

case "${DELTACI_BASE:-official}" in
  official)
    control_base="" runner_base="" ;;
  debian)
    control_base="${DEBIAN_BASE_PREFIX:-localhost/deltaci-base/}control-plane:${DEBIAN_SUITE:-bookworm}"
    runner_base="${DEBIAN_BASE_PREFIX:-localhost/deltaci-base/}runner:${DEBIAN_SUITE:-bookworm}"
    common="python3 python3-venv python-is-python3 git ca-certificates passwd"
    # shellcheck disable=SC2086
    CONTAINER_ENGINE="$engine" DEBIAN_IMAGE_LABEL="${IMAGE_LABEL:-}" \
      "$root/deploy/debian-image.sh" "$control_base" $common tzdata
    # shellcheck disable=SC2086
    CONTAINER_ENGINE="$engine" DEBIAN_IMAGE_LABEL="${IMAGE_LABEL:-}" \
      "$root/deploy/debian-image.sh" "$runner_base" $common bubblewrap
    ;;
  *) echo "build-images: DELTACI_BASE must be official or debian" >&2; exit 2 ;;
esac

build() {  # build DOCKERFILE TAG VERSION BASE
  set -- "$1" "$2" "$3" "$4"
  file="$1" tag="$2" ver="$3" base="$4"
  set -- build --network host --secret "id=ca_bundle,src=$ca_bundle" -f "deploy/$file" \
    --build-arg "VERSION=$ver" --build-arg "REVISION=$revision" -t "$tag"
  [ -n "$base" ] && set -- "$@" --build-arg "PYTHON_IMAGE=$base"
  [ -n "${IMAGE_LABEL:-}" ] && set -- "$@" --label "$IMAGE_LABEL"
  if [ "$engine" = podman ]; then
    set -- "$@" --ignorefile "deploy/$file.dockerignore" --layers --format docker
  fi
  echo "build-images: $engine $* ."
  DOCKER_BUILDKIT=1 "$engine" "$@" .
}

started="$(date +%s)"
build Dockerfile "${prefix}control-plane:$version" "$version" "$control_base"
build runner.Dockerfile "${prefix}runner:$runner_version" "$runner_version" "$runner_base"
echo "build-images: done in $(( $(date +%s) - started )) s"
echo "${prefix}control-plane:$version"
echo "${prefix}runner:$runner_version"
