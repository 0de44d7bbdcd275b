# Two entry points do all the set-up on a fresh Debian machine: `make serve` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
TESTSTAMP := $(VENV)/.installed-test
BENCHSTAMP := $(VENV)/.installed-bench

# Debian tools the tests drive as real clients (and nginx for the deployment tests and bench),
# Node.js for tus-js-client, and Chromium for the real-browser tests (never a downloaded one).
DEBIAN_TEST_TOOLS := curl wget aria2 nginx-light libnginx-mod-http-headers-more-filter wrk \
	nodejs npm chromium tmux

.PHONY: serve test lint typecheck bench clean debian-tools

# Debian's own python3 ships venv separately (python3-venv); install it if that is missing.
$(PY):
	$(PYTHON) -m venv $(VENV) || { apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

$(TESTSTAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP) $@

$(BENCHSTAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[test,bench]'
	touch $(STAMP) $(TESTSTAMP) $@

serve: $(STAMP)
	$(VENV)/bin/spigot serve --host 127.0.0.1 --port 8080 --storage ./data

debian-tools:
	@$(PY) -m tests.tools $(DEBIAN_TEST_TOOLS)

test: $(TESTSTAMP) debian-tools
	$(VENV)/bin/ruff check server storage tests bench
	$(VENV)/bin/ruff format --check server storage tests bench
	$(VENV)/bin/mypy
	$(PY) -m pytest -q -p no:cacheprovider -n 2 --dist loadfile

lint: $(TESTSTAMP)
	$(VENV)/bin/ruff check server storage tests bench
	$(VENV)/bin/ruff format --check server storage tests bench

typecheck: $(TESTSTAMP)
	$(VENV)/bin/mypy

bench: $(BENCHSTAMP) debian-tools
	$(PY) -m bench.run
	$(PY) -m bench.receive
	$(PY) -m bench.s3
	$(PY) -m bench.deploy
	$(PY) -m bench.proxy_tls
	$(PY) -m bench.fsync
	$(PY) -m bench.load

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build *.egg-info
