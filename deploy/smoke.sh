#!/bin/sh
# deploy/smoke.sh — the Compose stack for real (make smoke): build (or reuse) the images,
# start deploy/docker-compose.yml with podman-compose (PostgreSQL, Redis, an S3 store,
# migrate, bootstrap, web, worker, beat, runner), wait for /readyz, run this repository's
# own pipeline (ci.ai.yaml) through the runner container to SUCCESS, check that its log
# and an artifact landed in the S3 store, and tear everything down, volumes included.
#
# PostgreSQL, Redis and the S3 store (moto's server) come from an image built from
# Debian packages for this test only (deploy/smoke/): the Compose file keeps the official
# images for users. Exit 0 on success; on failure the services' logs are printed.
#
# Environment: everything deploy/build-images.sh reads (DELTACI_BASE defaults to debian
# here), COMPOSE (default: podman-compose, from .venv if there), SMOKE_PROJECT (compose
# project name, default deltaci-smoke), SMOKE_LABEL (value of the label io.deltaci.smoke on
# every container),
# SMOKE_PORT (web on 127.0.0.1, default: a free port), SMOKE_KEEP=1 (leave it running),
# SMOKE_TIMEOUT (seconds for the run, default 600).
set -eu
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
started="$(date +%s)"
say() { printf 'smoke: [%4ss] %s\n' "$(( $(date +%s) - started ))" "$*"; }
fail() { say "FAILED: $*"; exit 1; }

export DELTACI_BASE="${DELTACI_BASE:-debian}"
project="${SMOKE_PROJECT:-deltaci-smoke}"
compose_bin="${COMPOSE:-}"
if [ -z "$compose_bin" ]; then
  if [ -x "$root/.venv/bin/podman-compose" ]; then compose_bin="$root/.venv/bin/podman-compose"
  else compose_bin=podman-compose; fi
fi
command -v "$compose_bin" >/dev/null 2>&1 || fail "no podman-compose (pip install -r requirements.txt)"
python="${PYTHON:-}"
if [ -z "$python" ]; then
  if [ -x "$root/.venv/bin/python" ]; then python="$root/.venv/bin/python"; else python=python3; fi
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/deltaci-smoke.XXXXXX")"

# --- images ---------------------------------------------------------------------------------
say "images (DELTACI_BASE=$DELTACI_BASE)"
tags="$("$root/deploy/build-images.sh" | tail -n 2)"
control_image="$(echo "$tags" | sed -n 1p)"
runner_image="$(echo "$tags" | sed -n 2p)"
services_base="${DEBIAN_BASE_PREFIX:-localhost/deltaci-base/}smoke-services:bookworm"
services_image="${SMOKE_SERVICES_IMAGE:-${IMAGE_PREFIX:-deltaci/}smoke-services:bookworm}"
DEBIAN_IMAGE_LABEL="${IMAGE_LABEL:-}" "$root/deploy/debian-image.sh" "$services_base" \
  postgresql redis-server python3 python3-venv ca-certificates
moto="$(grep -hE '^moto\[server\]==' requirements.txt requirements-dev.txt 2>/dev/null | head -n 1)"
moto="${moto:-moto[server]}"
set -- build --network host --secret "id=ca_bundle,src=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}" \
  -f deploy/smoke/services.Dockerfile --ignorefile deploy/smoke/services.Dockerfile.dockerignore \
  --build-arg "BASE=$services_base" --build-arg "MOTO_REQUIREMENT=$moto" -t "$services_image" --layers
[ -n "${IMAGE_LABEL:-}" ] && set -- "$@" --label "$IMAGE_LABEL"
podman "$@" . >"$work/build.log" 2>&1 || { cat "$work/build.log"; fail "services image"; }
say "images ready: $control_image $runner_image $services_image"

# --- a private copy of the Compose file, its env file and the dogfood repository ----------
cp deploy/docker-compose.yml deploy/smoke/compose.smoke.yml "$work/"
git clone -q --bare "$root" "$work/deltaci.git"
base_sha="$(git rev-parse HEAD)"
# A change to dev.py only: the diff-aware plan runs compile (with its artifact) and lint.
git clone -q "$work/deltaci.git" "$work/checkout"
echo "# smoke test $(date -u +%FT%TZ)" >> "$work/checkout/dev.py"
git -C "$work/checkout" -c user.name=smoke -c user.email=smoke@localhost commit -qam "smoke: touch dev.py"
git -C "$work/checkout" push -q origin HEAD:refs/heads/smoke
head_sha="$(git -C "$work/checkout" rev-parse HEAD)"
rm -rf "$work/checkout"
chown -R 10001:10001 "$work/deltaci.git"  # the containers' user owns it (git's safe.directory)

port="${SMOKE_PORT:-$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
secret() { "$python" -c 'import secrets; print(secrets.token_hex(24))'; }
cat > "$work/.env" <<ENV
DELTACI_ENV=prod
SECRET_KEY=$(secret)$(secret)
DELTACI_SECRETS_KEY=$("$python" -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())')
ALLOWED_HOSTS=localhost,127.0.0.1,web
DELTACI_PUBLIC_URL=http://127.0.0.1:$port
CSRF_TRUSTED_ORIGINS=http://127.0.0.1:$port
SESSION_COOKIE_SECURE=false
CSRF_COOKIE_SECURE=false
POSTGRES_PASSWORD=$(secret)
REDIS_PASSWORD=$(secret)
MINIO_ROOT_PASSWORD=$(secret)
GITHUB_WEBHOOK_SECRET=$(secret)
DELTACI_HTTP_BIND=127.0.0.1
DELTACI_HTTP_PORT=$port
WEB_CONCURRENCY=2
CELERY_WORKER_CONCURRENCY=2
DELTACI_IMAGE=$control_image
DELTACI_RUNNER_IMAGE=$runner_image
SMOKE_SERVICES_IMAGE=$services_image
SMOKE_REPO=$work/deltaci.git
SMOKE_LABEL=${SMOKE_LABEL:-1}
ENV
chmod 600 "$work/.env"

compose() { "$compose_bin" -p "$project" -f "$work/docker-compose.yml" -f "$work/compose.smoke.yml" "$@"; }
container() { podman ps -aq --filter "label=io.podman.compose.project=$project" \
  --filter "label=io.podman.compose.service=$1" | head -n 1; }
in_service() { _target="$1"; shift; podman exec "$(container "$_target")" "$@"; }

teardown() {
  status=$?
  if [ "$status" -ne 0 ]; then
    for svc in postgres redis minio create-bucket migrate bootstrap web worker beat runner; do
      c="$(container "$svc")"
      [ -n "$c" ] && { echo "--- logs of $svc (last 40 lines)"; podman logs --tail 40 "$c" 2>&1; }
    done
  fi
  if [ "${SMOKE_KEEP:-0}" = 1 ]; then
    say "kept running: project $project, web on http://127.0.0.1:$port, files in $work"
    return
  fi
  say "tearing down (volumes included)"
  compose down -v -t 5 >/dev/null 2>&1 || true
  podman volume ls -q --filter "label=io.podman.compose.project=$project" | xargs -r podman volume rm -f >/dev/null
  podman network ls -q --filter "label=io.podman.compose.project=$project" | xargs -r podman network rm >/dev/null
  rm -rf "$work"
  say "done (exit $status)"
}
trap teardown EXIT
trap 'exit 130' INT TERM

# --- start ------------------------------------------------------------------------------------
# In the Compose file's dependency order, one service at a time, each once what it
# depends on is healthy or has completed successfully. podman-compose does this itself
# only with podman >= 4.6: before, it ignores `service_healthy`, nothing runs health
# checks without systemd, and podman 4.3 cannot start a container that `--requires` an
# exited one-shot. So the conditions are read from the file and checked here.
probe() {  # probe SERVICE: its health check, once
  case "$1" in
    minio) in_service minio smoke-s3 healthy ;;  # its merged health check names mc
    *) podman healthcheck run "$(container "$1")" ;;
  esac
}
wait_until() {  # wait_until WHAT SECONDS COMMAND...
  what="$1" limit="$2"; shift 2
  i=0
  until "$@" >/dev/null 2>&1; do
    i=$((i + 1)); [ "$i" -le "$limit" ] || fail "$what"; sleep 1
  done
}
completed() {  # completed SERVICE: it exited 0
  code="$(podman wait "$(container "$1")")" || return 1
  [ "$code" = 0 ] || fail "$1 exited $code"
}
"$python" - "$work/docker-compose.yml" > "$work/order" <<'PY'
import sys

import yaml

services = yaml.safe_load(open(sys.argv[1]))["services"]
done, order = set(), []


def visit(name):
    if name not in done:
        for dep in services[name].get("depends_on") or {}:
            visit(dep)
        done.add(name)
        order.append(name)


for name in services:
    visit(name)
for name in order:
    deps = services[name].get("depends_on") or {}
    print(name, *(f"{dep}:{cond['condition']}" for dep, cond in deps.items()))
PY
while read -r service deps <&3; do  # fd 3: the commands below read stdin
  for dep in $deps; do
    case "${dep#*:}" in
      service_healthy) wait_until "$service waited for $dep" 120 probe "${dep%%:*}" ;;
      service_completed_successfully) completed "${dep%%:*}" ;;
    esac
  done
  compose up -d --no-deps --no-build --no-recreate "$service" >>"$work/up.log" 2>&1 \
    || { cat "$work/up.log"; fail "starting $service"; }
  say "started $service"
done 3< "$work/order"
wait_until "/readyz never answered 200" 120 "$python" -c \
  "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:$port/readyz', timeout=3).status != 200)"
say "/readyz is 200"

# --- the dogfood run --------------------------------------------------------------------------
# The runner's registration token is for DELTACI_ENV (bootstrap): the repository too.
in_service web python manage.py add_repo deltaci --url /srv/deltaci.git --visibility public \
  --environment prod >/dev/null
run_id="$(in_service web python manage.py trigger_run deltaci --ref refs/heads/smoke \
  --sha "$head_sha" --base "$base_sha" | tail -n 1)"
say "run $run_id triggered ($base_sha..$head_sha)"
deadline=$(( $(date +%s) + ${SMOKE_TIMEOUT:-600} ))
state=""
while :; do
  state="$("$python" -c "import json, urllib.request; print(json.load(urllib.request.urlopen('http://127.0.0.1:$port/api/v1/runs/$run_id', timeout=5))['run']['state'])" 2>/dev/null || true)"
  case "$state" in SUCCESS|FAILED|CANCELED|TIMEOUT|PLAN_FAILED) break ;; esac
  [ "$(date +%s)" -lt "$deadline" ] || fail "run $run_id still ${state:-unknown} after ${SMOKE_TIMEOUT:-600} s"
  sleep 3
done
"$python" -c "
import json, urllib.request
run = json.load(urllib.request.urlopen('http://127.0.0.1:$port/api/v1/runs/$run_id', timeout=5))
for item in run['jobs']:
    job = item['job']
    print('smoke:        job', job['name'], job['state'], job['reason_code'])
"
[ "$state" = SUCCESS ] || fail "run $run_id ended $state"
say "run $run_id: SUCCESS"

# --- what landed in the S3 store -------------------------------------------------------------
i=0
while :; do
  keys="$(in_service minio smoke-s3 list 2>/dev/null || true)"
  echo "$keys" | grep -q "^runs/$run_id/.*compileall.txt " && echo "$keys" | grep -q "^runs/$run_id/.*log" && break
  i=$((i + 1)); [ "$i" -le 60 ] || { echo "$keys"; fail "log or artifact missing from the S3 store"; }
  sleep 2
done
echo "$keys" | grep "^runs/$run_id/" | sed 's/^/smoke:        s3 /'
say "log and artifact are in the S3 store"
say "PASSED in $(( $(date +%s) - started )) s"
