# syntax=docker/dockerfile:1
# citeqa: the index is built at image build time, so a container is ready in seconds.
# Build and install run the Makefile's own targets (`make install`, `make index`).

FROM python:3.11.7-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends make=4.3-4.1 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY Makefile pyproject.toml requirements.lock README.md ./
COPY ingest ingest
COPY service service
COPY eval eval
# CPU-only torch: the default wheel on PyPI carries CUDA, gigabytes the image does not need.
RUN make install TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
COPY corpus corpus
RUN make index

FROM python:3.11.7-slim-bookworm
RUN useradd --create-home --uid 10001 citeqa
WORKDIR /app
COPY --from=build --chown=citeqa:citeqa /app /app
USER 10001
ENV PATH=/app/.venv/bin:$PATH \
    HF_HUB_OFFLINE=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    CITEQA_INDEX_DIR=/app/index
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('PORT', '8000'), timeout=2)"]
CMD ["citeqa", "serve"]
