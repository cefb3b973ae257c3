#!/bin/sh
# The runner image: registration token from $DELTACI_REGISTRATION_TOKEN, or read from
# $DELTACI_REGISTRATION_TOKEN_FILE (a mounted Secret or the Compose bootstrap volume).
set -eu

case "${1:-}" in
  --version|version) exec deltaci-runner --version ;;
esac

if [ -z "${DELTACI_REGISTRATION_TOKEN:-}" ] && [ -n "${DELTACI_REGISTRATION_TOKEN_FILE:-}" ]; then
  i=0
  while [ ! -s "$DELTACI_REGISTRATION_TOKEN_FILE" ]; do
    i=$((i + 1))
    if [ "$i" -gt 60 ]; then
      echo '{"level":"error","msg":"no registration token file"}' >&2
      exit 2
    fi
    sleep 2
  done
  DELTACI_REGISTRATION_TOKEN="$(cat "$DELTACI_REGISTRATION_TOKEN_FILE")"
fi
export DELTACI_REGISTRATION_TOKEN="${DELTACI_REGISTRATION_TOKEN:-}"

: "${DELTACI_URL:?set DELTACI_URL to the control plane base URL}"
base="${DELTACI_RUNNER_DIR:-/var/lib/deltaci-runner}"
exec deltaci-runner --url "$DELTACI_URL" \
  --state-dir "$base/state" --work-dir "$base/work" --cache-dir "$base/cache" "$@"
