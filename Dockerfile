# syntax=docker/dockerfile:1
# One image for every TwinCast service: `twincast run <stt|reasoning|mood|tts|gateway>`.
FROM python:3.11-slim

LABEL org.opencontainers.image.title="twincast" \
      org.opencontainers.image.description="TwinCast services (stt, reasoning, mood, tts, gateway)" \
      org.opencontainers.image.source="https://github.com/twincast/twincast" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="0.1.0"

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv

# Same uv as the one that wrote uv.lock.
RUN pip install "uv==0.13.9"

WORKDIR /app

# Third-party dependencies first, from the lock file and the workspace members' metadata
# only, so that a code change does not reinstall them.
COPY pyproject.toml uv.lock README.md ./
COPY shared/pyproject.toml shared/pyproject.toml
COPY services/stt/pyproject.toml services/stt/pyproject.toml
COPY services/reasoning/pyproject.toml services/reasoning/pyproject.toml
COPY services/mood/pyproject.toml services/mood/pyproject.toml
COPY services/tts/pyproject.toml services/tts/pyproject.toml
COPY services/gateway/pyproject.toml services/gateway/pyproject.toml
RUN uv sync --frozen --no-dev --no-install-workspace

COPY . .
RUN uv sync --frozen --no-dev \
 && /app/.venv/bin/python -m compileall -q twincast bench shared services \
 && /app/.venv/bin/twincast --help > /dev/null

# Files stay root-owned (read-only for the service); the service runs as uid 10001.
RUN groupadd --system --gid 10001 twincast \
 && useradd --system --uid 10001 --gid 10001 --home-dir /home/twincast --create-home \
      --shell /usr/sbin/nologin twincast

ENV PATH="/app/.venv/bin:${PATH}" \
    HOME=/home/twincast \
    TWINCAST_HEALTH_HOST=0.0.0.0 \
    TWINCAST_HEALTH_PORT=8090 \
    TWINCAST_LOG_LEVEL=INFO \
    TWINCAST_TWIN=juniper

USER 10001:10001

# 8080: gateway pages + health; 8090: worker health.
EXPOSE 8080 8090

ENTRYPOINT ["/app/.venv/bin/twincast"]
CMD ["--help"]
