# Delta CI reference runner (runner/, console script `deltaci-runner`).
#
#   docker build -f deploy/runner.Dockerfile -t deltaci/runner:0.1.0 .
#
# Jobs run inside bubblewrap sandboxes started by the (non-root) runner. bwrap needs
# unprivileged user namespaces: see deploy/README.md ("Runners and bubblewrap") for the
# container settings this requires and the trade-off.
ARG PYTHON_IMAGE=python:3.11.10-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
COPY requirements.txt /src/requirements.txt
COPY runner/ /src/runner/
# The runner's one dependency, pinned by the repository's requirements.txt.
RUN grep -E '^(requests|urllib3|certifi|idna|charset-normalizer)==' /src/requirements.txt \
      > /src/constraints.txt \
 && /opt/venv/bin/pip install --constraint /src/constraints.txt /src/runner

FROM ${PYTHON_IMAGE} AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends bubblewrap git ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
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
