#!/usr/bin/env bash
# Build a minimal Debian image without any registry: mmdebstrap makes a root filesystem
# (Essential packages, bash, plus PACKAGEs) and `podman import` turns it into image TAG.
# The image carries /etc/deltaci-image containing TAG, so a job can prove which image it
# ran in. Cached in podman's image store: nothing is done when TAG already exists.
#
#   deploy/debian-image.sh TAG [PACKAGE...]
#   DEBIAN_SUITE=bookworm (default: the host's), DEBIAN_MIRROR=http://deb.debian.org/debian
#   CONTAINER_CLI=podman (or docker)
set -euo pipefail

if [ "$#" -lt 1 ] || [ -z "$1" ]; then
  echo "usage: $0 TAG [PACKAGE...]" >&2
  exit 2
fi
tag="$1"
shift
cli="${CONTAINER_CLI:-podman}"
case "$tag" in
  *[!A-Za-z0-9._/:@-]*) echo "$0: invalid tag: $tag" >&2; exit 2 ;;
esac
for pkg in "$@"; do
  case "$pkg" in
    ""|-*|*[!A-Za-z0-9.+-]*) echo "$0: invalid package name: $pkg" >&2; exit 2 ;;
  esac
done

if "$cli" image inspect "$tag" >/dev/null 2>&1; then
  echo "$tag: already built"
  exit 0
fi

suite="${DEBIAN_SUITE:-$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
include="bash"
for pkg in "$@"; do include="$include,$pkg"; done

tarball="$(mktemp --suffix=.tar)"
trap 'rm -f "$tarball"' EXIT
mmdebstrap --quiet --variant=essential --include="$include" \
  --customize-hook="echo '$tag' > \"\$1/etc/deltaci-image\"" \
  --customize-hook='rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/*' \
  "$suite" "$tarball" "$mirror"
"$cli" import --quiet --change 'CMD ["/bin/bash"]' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  "$tarball" "$tag" >/dev/null
echo "$tag: built"
