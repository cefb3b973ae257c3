#!/bin/sh
# The control plane image's roles. Configuration comes only from the environment.
set -eu

role="${1:-web}"
[ "$#" -gt 0 ] && shift
# The role, for deploy/healthcheck.py (a health check does not see this script's variables).
echo "$role" > /tmp/deltaci-role 2>/dev/null || true

case "$role" in
  web)
    exec gunicorn -c /app/deploy/gunicorn.conf.py "$@"
    ;;
  worker)
    exec celery -A deltaci worker --loglevel "${LOG_LEVEL:-INFO}" \
      --concurrency "${CELERY_WORKER_CONCURRENCY:-2}" "$@"
    ;;
  beat)
    exec celery -A deltaci beat --loglevel "${LOG_LEVEL:-INFO}" "$@"
    ;;
  migrate)
    exec python manage.py migrate --noinput "$@"
    ;;
  bootstrap)
    exec /app/deploy/bootstrap.sh "$@"
    ;;
  manage)
    exec python manage.py "$@"
    ;;
  version|--version)
    exec python -c 'from deltaci.version import VERSION; print(VERSION)'
    ;;
  *)
    exec "$role" "$@"
    ;;
esac
