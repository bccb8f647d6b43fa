# The README's commands. `make demo` and `make test` install everything they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
NODE_INSTALLED := node_modules/.installed
DEMO_DIR ?= demo-data
PORT ?= 8700

.PHONY: install demo test lint e2e bench-smoke bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): setup.cfg pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

$(NODE_INSTALLED): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(INSTALLED) $(NODE_INSTALLED)

demo: install
	$(PY) server.py --demo --data-dir $(DEMO_DIR) --port $(PORT)

lint: install
	$(PY) -m ruff check .

# Two workers, one test file each at a time (module fixtures and order stay per file).
TEST_WORKERS ?= 2
test: install lint
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

e2e: install
	$(PY) -m pytest tests/e2e

# bench.deploy runs on a fleet of real OpenSSH servers (Debian's openssh-server, as
# .ci/run installs) unless given --fleet asyncssh (the simulator).
bench-smoke: install
	$(PY) -m bench.deploy --hosts 5 --parallel 5 --artifact-mb 1
	$(PY) -m bench.deploy --fleet asyncssh --hosts 5 --parallel 5 --artifact-mb 1
	$(PY) -m bench.fanout --clients 20 --rate 100 --seconds 2
	$(PY) -m bench.console --hosts 60 --parallel 20 --open-after-ok 5 --hook-sleep 0.5

bench: install
	$(PY) -m bench.deploy --fleet openssh --hosts 200 --parallel 50 --artifact-mb 5 --repeat 3
	$(PY) -m bench.deploy --fleet asyncssh --hosts 200 --parallel 100 --artifact-mb 5
	$(PY) -m bench.host_cost --artifact-mb 5 --samples 3
	$(PY) -m bench.fanout --clients 1000 --rate 2000 --seconds 10
	$(PY) -m bench.console --hosts 500
	$(PY) -m bench.chat
	$(PY) -m bench.wall --hosts 2000
	$(PY) -m bench.durability

clean:
	rm -rf $(VENV) node_modules $(DEMO_DIR) test-artifacts
