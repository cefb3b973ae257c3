# Smoke test only (deploy/smoke.sh): PostgreSQL, Redis and an S3 store (moto's server)
# from Debian packages and PyPI, for machines that reach no image registry. Users run the
# official images named in deploy/docker-compose.yml.
ARG BASE=localhost/deltaci-base/smoke-services:bookworm
FROM ${BASE}
# The package made a cluster when installed (on whatever port was free on the building
# host): drop it, so the tools default to port 5432 and the entrypoint makes its own.
ARG MOTO_REQUIREMENT
RUN --mount=type=secret,id=ca_bundle \
    if [ -s /run/secrets/ca_bundle ]; then export PIP_CERT=/run/secrets/ca_bundle; fi \
 && python3 -m venv /opt/moto \
 && /opt/moto/bin/pip install --no-cache-dir --disable-pip-version-check --only-binary=:all: \
      "${MOTO_REQUIREMENT:?pass --build-arg MOTO_REQUIREMENT}" \
 && rm -rf /etc/postgresql/* /var/lib/postgresql/* \
 && mkdir -p /var/run/postgresql && chown postgres:postgres /var/run/postgresql
COPY deploy/smoke/postgres.sh /usr/local/bin/smoke-postgres
COPY deploy/smoke/s3.py /usr/local/bin/smoke-s3
