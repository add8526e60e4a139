# One image for every Lathe role: `lathe serve` (API), `lathe worker` (GPU trainer), `lathe migrate`.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LATHE_DATA_DIR=/var/lib/lathe

# The PyPI torch wheel for Linux x86_64 ships the CUDA runtime: workers see the host's GPUs
# through the NVIDIA container toolkit; the API never imports torch at start-up.
ARG TORCH_SPEC="torch==2.13.0"
RUN pip install "${TORCH_SPEC}"

WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY core ./core
COPY api ./api
COPY worker ./worker
COPY migrations ./migrations
# Editable, so `lathe migrate` finds migrations/ beside the code.
RUN pip install -e . \
    && useradd --create-home --uid 1000 lathe \
    && mkdir -p /var/lib/lathe && chown lathe /var/lib/lathe

USER lathe
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --retries=5 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health')"
CMD ["lathe", "serve", "--host", "0.0.0.0", "--port", "8000"]
