# memhub server image: multi-stage (wheels built in the first stage, nothing but the
# runtime in the second), slim, non-root, with a health check. Build from the repo root:
#   docker build -t memhub .
# See deploy/README.md for the scale-out compose file that runs two of these.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --wheel-dir /wheels .

FROM python:3.11-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MEMHUB_HOST=0.0.0.0 \
    MEMHUB_PORT=8000 \
    MEMHUB_DATA_DIR=/var/lib/memhub
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels memhub \
    && groupadd --system --gid 10001 memhub \
    && useradd --system --uid 10001 --gid memhub --home-dir /var/lib/memhub --no-create-home memhub \
    && mkdir -p /var/lib/memhub \
    && chown memhub:memhub /var/lib/memhub
USER 10001:10001
WORKDIR /var/lib/memhub
# the node's local state: its search index (derived; rebuilt from the change log on start)
VOLUME ["/var/lib/memhub"]
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('MEMHUB_PORT', '8000'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/health', timeout=2).status == 200 else 1)"]
ENTRYPOINT ["memhub", "serve"]
