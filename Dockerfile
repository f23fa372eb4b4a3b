# syntax=docker/dockerfile:1
# Production image: uvicorn on PostgreSQL (DATABASE_URL=postgresql+asyncpg://...), non-root.

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /build
RUN python -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/venv/bin/pip install --upgrade pip \
    && /opt/venv/bin/pip install .

FROM python:3.11-slim AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    EXCHANGE_MIGRATIONS_DIR=/app/migrations \
    EXCHANGE_EVIDENCE_DIR=/var/lib/exchange/evidence
RUN groupadd --system exchange && useradd --system --gid exchange --home-dir /app exchange \
    && mkdir -p /var/lib/exchange/evidence && chown -R exchange:exchange /var/lib/exchange
# Evidence documents must outlive the container: mount a volume (or shared storage) here.
VOLUME ["/var/lib/exchange/evidence"]
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY alembic.ini ./
COPY migrations ./migrations
USER exchange
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz').status == 200 else 1)"]
# Run `python -m exchange migrate` once per release (a job), then start the API processes.
CMD ["python", "-m", "exchange", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
