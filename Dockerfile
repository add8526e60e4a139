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
# Optional extras, e.g. LATHE_EXTRAS="[ray]" for the Ray nodes and the workers that submit
# jobs across hosts to them (docker-compose.yml's `ray` profile).
ARG LATHE_EXTRAS=""
# Editable, so `lathe migrate` finds migrations/ beside the code.
# The data directory and the model cache exist in the image, owned by the uid the processes
# run as: a fresh named volume mounted on either copies that ownership, so it is writable.
RUN pip install -e ".${LATHE_EXTRAS}" \
    && useradd --create-home --uid 1000 lathe \
    && mkdir -p /var/lib/lathe/models \
    && chown -R lathe:lathe /var/lib/lathe

USER lathe
EXPOSE 8000
# No image-wide HEALTHCHECK: each role answers differently (the API's /ready, the inference
# service's /health on 8001, `lathe ready` for a worker); docker-compose.yml sets each.
CMD ["lathe", "serve", "--host", "0.0.0.0", "--port", "8000"]
