# Delta CI reference runner (runner/, console script `deltaci-runner`).
#
#   deploy/build-images.sh                 # podman or docker; see deploy/README.md ("Images")
#   docker run --rm deltaci/runner:0.1.0 --version
#
# PYTHON_IMAGE picks the base, as for the control plane (deploy/Dockerfile).
# Jobs run inside bubblewrap sandboxes started by the (non-root) runner. bwrap needs
# unprivileged user namespaces: see deploy/README.md ("Runners and bubblewrap") for the
# container settings this requires and the trade-off.
ARG PYTHON_IMAGE=python:3.11.10-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
COPY requirements.txt /src/requirements.txt
COPY runner/ /src/runner/
# The runner's one dependency, pinned by the repository's requirements.txt; the builder's
# CA bundle as in deploy/Dockerfile.
RUN --mount=type=secret,id=ca_bundle \
    if [ -s /run/secrets/ca_bundle ]; then export PIP_CERT=/run/secrets/ca_bundle; fi \
 && grep -E '^(requests|urllib3|certifi|idna|charset-normalizer)==' /src/requirements.txt \
      > /src/constraints.txt \
 && /opt/venv/bin/pip install --only-binary=:all: --constraint /src/constraints.txt /src/runner

FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="deltaci-runner" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="deploy/runner.Dockerfile"
COPY deploy/image-packages.sh /usr/local/sbin/image-packages
RUN image-packages bubblewrap git ca-certificates passwd \
 && groupadd --system --gid 10001 runner \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/deltaci-runner \
        --create-home --shell /usr/sbin/nologin runner
COPY --from=build /opt/venv /opt/venv
COPY deploy/runner-entrypoint.sh /usr/local/bin/deltaci-runner-entrypoint
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DELTACI_RUNNER_DIR=/var/lib/deltaci-runner
WORKDIR /var/lib/deltaci-runner
USER 10001:10001
# Healthy once registered: the runner writes its registration before asking for work.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["test", "-s", "/var/lib/deltaci-runner/state/registration.json"]
ENTRYPOINT ["/usr/local/bin/deltaci-runner-entrypoint"]
CMD []
