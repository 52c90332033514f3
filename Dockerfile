# syntax=docker/dockerfile:1
# svc: services and billing of a Kazoo-style cluster (SPEC §1, §9).
#
#   docker build -t svc .
#   docker run --rm -p 9102:9102 -e SVC_AMQP_URL=amqp://guest:guest@broker:5672/ svc
#
# The builder installs the package and its dependencies into a virtualenv; the final image
# gets only that virtualenv on the same Python base (the venv's interpreter links to
# /usr/local/bin/python3, so both stages must use the same image), runs as UID 10001 and
# keeps its embedded SQLite store in the /data volume unless SVC_STORE_URL says otherwise.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
RUN python -m venv /opt/venv

# Only what the wheel needs (see .dockerignore): the metadata, the README it names, the package.
COPY pyproject.toml README.md ./
COPY svc ./svc

# Build the wheel, then install it with its dependencies into the venv (every dependency
# ships manylinux wheels, so no compiler is needed even here).
RUN python -m pip wheel --no-deps --wheel-dir /wheels . \
    && /opt/venv/bin/python -m pip install --no-compile /wheels/*.whl \
    && /opt/venv/bin/python -m compileall -q /opt/venv/lib \
    && /opt/venv/bin/svc --help > /dev/null


FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="svc" \
      org.opencontainers.image.description="Services and billing for a Kazoo-style telecom cluster" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    SVC_STORE_URL=sqlite:////data/svc.db \
    SVC_HTTP_HOST=0.0.0.0 \
    SVC_HTTP_PORT=9102 \
    SVC_LOG_FORMAT=json

RUN groupadd --system --gid 10001 svc \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home \
       --shell /usr/sbin/nologin svc \
    && mkdir -p /data \
    && chown 10001:10001 /data

COPY --from=builder /opt/venv /opt/venv

WORKDIR /data
VOLUME ["/data"]
USER 10001:10001

EXPOSE 9102

# Liveness as Kubernetes sees it (/healthz: 200 unless the event loop is stuck), with the
# stdlib only: the slim image has no curl or wget.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('SVC_HTTP_PORT', '9102'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4).status == 200 else 1)"]

# svc handles SIGTERM itself (stops consuming, drains in-flight work, closes cleanly).
STOPSIGNAL SIGTERM
ENTRYPOINT ["svc"]
CMD ["serve"]
