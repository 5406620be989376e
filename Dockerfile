# syntax=docker/dockerfile:1
# One image per Ordo service, built from the repository root (the uv workspace):
#
#   docker build --build-arg SERVICE=order -t ordo-order .
#
# SERVICE is one of: signal, order, risk, execution, reconciler, notifier.
# The container runs `python -m ordo.<service>` with the arguments given (default `run`;
# `migrate` applies the service's Alembic migrations and exits).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# -- builder: resolve from uv.lock, install into /app/.venv ---------------------------------------
FROM ${PYTHON_IMAGE} AS builder
ARG SERVICE
RUN test -n "${SERVICE}" || { echo "build with --build-arg SERVICE=<service>" >&2; exit 1; }

RUN pip install --no-cache-dir uv==0.13.9

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app

# 1. Third-party dependencies only. uv needs every workspace member's manifest to read the
#    workspace, but not their sources: this layer is rebuilt only when a manifest or the lock
#    changes, not on every code change.
COPY pyproject.toml uv.lock ./
COPY libs/contracts/pyproject.toml libs/contracts/
COPY libs/kit/pyproject.toml libs/kit/
COPY services/signal/pyproject.toml services/signal/
COPY services/order/pyproject.toml services/order/
COPY services/risk/pyproject.toml services/risk/
COPY services/execution/pyproject.toml services/execution/
COPY services/reconciler/pyproject.toml services/reconciler/
COPY services/notifier/pyproject.toml services/notifier/
COPY cli/pyproject.toml cli/
COPY bench/pyproject.toml bench/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace --package "ordo-${SERVICE}"

# 2. The service and the libraries it imports, installed into the venv (not editable), so that
#    the runtime stage needs nothing but the venv.
COPY libs/ libs/
COPY services/${SERVICE}/ services/${SERVICE}/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package "ordo-${SERVICE}"

# -- runtime: the venv on a slim Python, as an unprivileged user ----------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ARG SERVICE
LABEL org.opencontainers.image.title="ordo-${SERVICE}" \
      org.opencontainers.image.description="Ordo ${SERVICE} service"

RUN groupadd --system --gid 10001 ordo \
    && useradd --system --uid 10001 --gid ordo --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin ordo

# ARG values do not exist at run time: keep the module in the environment for the entrypoint.
# (No ORDO_ prefix: that namespace belongs to the service settings.)
ENV SERVICE_MODULE="ordo.${SERVICE}" \
    PATH="/app/.venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ORDO_HTTP__HOST=0.0.0.0 \
    ORDO_HTTP__PORT=8080 \
    ORDO_VAR_DIR=/tmp/ordo

WORKDIR /app
# Owned by root and not writable by the service user: the code cannot be changed at run time.
COPY --from=builder /app/.venv /app/.venv

USER 10001:10001
EXPOSE 8080

HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('ORDO_HTTP__PORT', '8080') + '/healthz', timeout=4)"]

# `exec` makes Python PID 1, so that it receives SIGTERM and shuts down cleanly.
ENTRYPOINT ["/bin/sh", "-c", "exec python -m \"${SERVICE_MODULE}\" \"$@\"", "ordo"]
CMD ["run"]
