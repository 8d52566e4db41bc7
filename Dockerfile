# citeqa: two stages on one base image.
#   ingest: the Makefile's own `make install` (the `ingest` extra: torch, sentence-transformers)
#           and `make index`, so the served index is built at image build time; it also makes
#           the serve-only venv. `docker build --target ingest` is an image that indexes a
#           mounted corpus (docs/operations.md, "Docker").
#   final:  that venv (`pip install .`: onnxruntime + tokenizers, no torch), the index, uid 10001;
#           everything owned by root and read-only to the app.
# Where pip reads packages from is chosen by build args, never by editing this file; with
# none, PyPI and torch's CPU wheel index. `make docker` builds from ./wheelhouse over loopback:
#   --network host --build-arg PIP_NO_INDEX=1 \
#   --build-arg PIP_FIND_LINKS=http://127.0.0.1:PORT/ --build-arg TORCH_PIP_ARGS=

FROM python:3.11.7-slim-bookworm AS ingest
# Both stages carry it: `make docker` removes its own superseded builds by it, nothing else.
LABEL org.opencontainers.image.title=citeqa
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 HF_HUB_OFFLINE=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends make=4.3-4.1 \
    && rm -rf /var/lib/apt/lists/*
# Unset unless given: pip then uses PyPI. pip reads them from the environment of each RUN.
ARG PIP_INDEX_URL
ARG PIP_FIND_LINKS
ARG PIP_NO_INDEX
# CPU-only torch: the default wheel on PyPI pulls CUDA, gigabytes no image here needs.
ARG TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
WORKDIR /app
COPY Makefile pyproject.toml requirements.lock README.md ./
COPY ingest ingest
COPY service service
COPY eval eval
RUN make install TORCH_PIP_ARGS="${TORCH_PIP_ARGS}" \
    && make install-serve VENV=/opt/citeqa
COPY corpus corpus
RUN make index
ENV PATH=/app/.venv/bin:$PATH
CMD ["citeqa", "ingest", "--corpus", "/corpus", "--index", "/out/index"]

FROM python:3.11.7-slim-bookworm
LABEL org.opencontainers.image.title=citeqa
RUN useradd --no-create-home --shell /usr/sbin/nologin --uid 10001 citeqa
COPY --from=ingest /opt/citeqa /opt/citeqa
COPY --from=ingest /app/index /app/index
WORKDIR /app
USER 10001
ENV PATH=/opt/citeqa/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    CITEQA_INDEX_DIR=/app/index
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('PORT', '8000'), timeout=2)"]
CMD ["citeqa", "serve"]
