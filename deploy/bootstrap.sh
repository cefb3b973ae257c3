#!/bin/sh
# One-shot set-up for a single server (docker compose runs it after the `migrate` service
# and before web/worker/beat): create the admin if DELTACI_ADMIN_PASSWORD is set, and make
# sure the runner has a registration token. Safe to run again: every step is idempotent.
set -eu

if [ -n "${DELTACI_ADMIN_PASSWORD:-}" ]; then
  # the password is read from DELTACI_ADMIN_PASSWORD (never an argument: '-x…' would break it)
  python manage.py ensure_admin --username "${DELTACI_ADMIN_USERNAME:-admin}"
fi

# A token given in the env file wins; otherwise create one once and keep it in the
# shared volume the runner reads (mode 0600, never printed to the log).
token_file="${DELTACI_REGISTRATION_TOKEN_FILE:-/run/deltaci/registration-token}"
if [ -z "${DELTACI_REGISTRATION_TOKEN:-}" ] && [ ! -s "$token_file" ]; then
  umask 077
  mkdir -p "$(dirname "$token_file")"
  python manage.py create_runner_token --environment "${DELTACI_ENV:-dev}" \
    --name "compose-runner" | tail -n 1 > "$token_file.tmp"
  mv "$token_file.tmp" "$token_file"
  echo "bootstrap: runner registration token created (in $token_file)"
fi
echo "bootstrap: done"
