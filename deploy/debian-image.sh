#!/bin/sh
# deploy/debian-image.sh TAG [PACKAGE…]
#
# A minimal Debian image built from Debian packages alone — no image registry needed, as
# on an air-gapped network with a local Debian mirror: mmdebstrap makes the root
# filesystem (variant minbase plus the packages), `podman import` turns it into TAG. The
# image carries /etc/deltaci-image containing TAG, so a job can prove which image it ran
# in. Nothing is done when TAG already exists (delete it to rebuild).
#
# Environment: DEBIAN_SUITE (default bookworm), DEBIAN_MIRROR (default: the host's apt
# sources), DEBIAN_IMAGE_LABEL (optional KEY=VALUE added to the image), CONTAINER_ENGINE
# (or CONTAINER_CLI; podman by default; docker imports the same way).
# Needs root (or podman unshare) and mmdebstrap; about 20 s with a near mirror.
set -eu

if [ "$#" -lt 1 ] || [ -z "$1" ]; then
  echo "usage: $0 TAG [PACKAGE...]" >&2
  exit 2
fi
tag="$1"
shift
case "$tag" in
  *[!A-Za-z0-9._/:@-]*|-*) echo "debian-image: bad tag: $tag" >&2; exit 2 ;;
esac
include=""
for pkg in "$@"; do
  case "$pkg" in
    *[!A-Za-z0-9.+-]*|-*) echo "debian-image: bad package name: $pkg" >&2; exit 2 ;;
  esac
  include="${include:+$include,}$pkg"
done
engine="${CONTAINER_ENGINE:-${CONTAINER_CLI:-podman}}"
if "$engine" image inspect "$tag" >/dev/null 2>&1; then
  echo "debian-image: $tag exists, kept"
  exit 0
fi

suite="${DEBIAN_SUITE:-bookworm}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
set -- --variant=minbase --format=tar --quiet \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
  --customize-hook="echo '$tag' > \"\$1/etc/deltaci-image\"" \
  --customize-hook='rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/*'
[ -n "$include" ] && set -- "$@" --include="$include"
# shellcheck disable=SC2086 # DEBIAN_MIRROR may name several sources on purpose
mmdebstrap "$@" "$suite" "$work/rootfs.tar" ${DEBIAN_MIRROR:-}

set -- --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/sh"]'
[ -n "${DEBIAN_IMAGE_LABEL:-}" ] && set -- "$@" --change "LABEL $DEBIAN_IMAGE_LABEL"
"$engine" import "$@" "$work/rootfs.tar" "$tag" >/dev/null
echo "debian-image: built $tag ($suite${include:+: $include})"
