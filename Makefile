# Newcomers: `make run` (dashboard with demo data on SQLite) and `make test` (whole suite).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
FLASK := $(VENV)/bin/flask --app wsgi
HOST ?= 127.0.0.1
PORT ?= 8050

.PHONY: run test test-unit install install-dev clean bench bench-quick bench-instructions bench-scaleout cluster audit

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

.stamp-install: requirements.txt | $(PY)
	$(PIP) install -q -r requirements.txt
	touch $@

.stamp-install-dev: requirements.txt requirements-dev.txt | $(PY)
	$(PIP) install -q -r requirements-dev.txt
	touch $@ .stamp-install

install: .stamp-install
install-dev: .stamp-install-dev

DEMO_DAYS ?= 30
DEMO_PER_HOUR ?= 400

run: .stamp-install
	$(FLASK) init-db
	$(FLASK) seed-demo --days $(DEMO_DAYS) --per-hour $(DEMO_PER_HOUR) --if-empty
	@echo "Dashboard: http://$(HOST):$(PORT)/analytics/   API: http://$(HOST):$(PORT)/api/analytics/openapi.json"
	DEMO_FEED_PER_HOUR=$(DEMO_PER_HOUR) $(FLASK) run --host $(HOST) --port $(PORT)

test: .stamp-install-dev
	$(PY) -m pytest -n 2 --dist loadfile

test-unit: .stamp-install-dev
	$(PY) -m pytest tests/unit

bench: .stamp-install-dev
	$(PY) -m bench --events 10000000

# Instructions per chart request under valgrind's callgrind (apt-get install valgrind): a
# yardstick that does not wander with the machine (bench/instructions.py).
bench-instructions: .stamp-install-dev
	$(PY) -m bench.instructions --events 2000000

bench-scaleout: .stamp-install-dev
	$(PY) -m bench.scaleout

cluster: .stamp-install-dev
	$(PY) -m bench.cluster --demo-days 3

bench-quick: .stamp-install-dev
	$(PY) -m bench --events 1000000 --load-seconds 30 --repeats 9 --live-seconds 120 --live-runs 1 --ramp 4000,8000

# Known vulnerabilities in the pinned requirements. Needs the PyPI advisory service, which CI's
# network does not reach: --strict makes "could not be audited" a failure instead of a pass.
audit: .stamp-install-dev
	$(PIP) install -q pip-audit==2.10.1
	$(VENV)/bin/pip-audit --strict --progress-spinner off -r requirements.txt

clean:
	rm -rf $(VENV) .stamp-install .stamp-install-dev .pytest_cache
