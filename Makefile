# Two commands for a new user: `make run` (install, build the seed index, serve the page)
# and `make test` (install, then the whole test suite, browser tests included).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE = 1
export HF_HUB_DISABLE_TELEMETRY = 1
export GRADIO_ANALYTICS_ENABLED = False

.PHONY: install browser run test index bench clean

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

install: $(VENV)/.installed

# Debian's Chromium for the browser tests (Playwright's own browser download would fail here).
browser:
	@command -v chromium >/dev/null || { \
		echo "installing Debian chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

run: install
	$(PY) app.py

index: install
	$(PY) -m qa index

# Two workers, each test file on one (its module fixtures, e.g. a served page, are shared
# there): many tests wait on servers, browsers and clusters rather than compute.
test: install browser
	$(PY) -m pytest -q -n 2 --dist loadfile

bench: install
	$(PY) bench/throughput.py && $(PY) bench/latency.py && $(PY) bench/quality.py

clean:
	rm -rf $(VENV) index/gen-* index/CURRENT
