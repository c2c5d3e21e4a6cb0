# Two commands set up a fresh machine and run: `make demo` and `make test`.
# Every step is idempotent: a stamp file records what was installed, keyed on the file that
# says what to install, so a second run reinstalls nothing.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := openjdk-17-jre-headless chromium chromium-driver wrk
PIP_STAMP := $(VENV)/.installed-all-dev
NPM_STAMP := web_onnxjs/node_modules/.installed

.PHONY: setup system python web demo test bench clean

setup: system python web

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

demo: setup
	$(PY) -m edgecloud demo

test: setup
	$(PY) -m pytest -ra

bench: setup
	$(PY) -m benchmarks.run

clean:
	rm -rf $(VENV) web_onnxjs/node_modules .pytest_cache build *.egg-info
