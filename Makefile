# Two entry points for a fresh machine (see README):
#   make serve   set up a virtualenv and run the server on the embedded SQLite default
#   make test    set up everything (virtualenv, the real-Asterisk root filesystem, chromium, podman
#                and the container base images) and run all tests + lint
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: serve test lint unit e2e docker browser postgres compiler screenshots fuzz bench bench-sipp asterisk-root container-bases systemd-tools wheel clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

serve: $(STAMP)
	$(VENV)/bin/callscreen serve

# The wheel to install on a PBX (README: Install on a PBX): dist/callscreen-VERSION-cp311-...whl,
# its call path compiled by mypyc (setup.py); CALLSCREEN_COMPILE=0 makes a py3-none-any wheel.
wheel: $(STAMP)
	$(PY) -m pip wheel -q --no-deps -w dist .

asterisk-root:
	bash scripts/asterisk-root.sh

# tests/install checks the shipped units with systemd-analyze and systemd-sysusers (Debian's
# systemd package; a container image may lack it).
systemd-tools:
	@command -v systemd-analyze >/dev/null && command -v systemd-sysusers >/dev/null || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null; }

# Debian's chromium (and the DejaVu fonts) for the portal's browser tests; never `playwright install`.
browser:
	bash scripts/browser.sh

# Debian's PostgreSQL 15: the store's tests run on it too (tests/pg.py starts a throwaway cluster).
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null; }

# A C compiler: the wheel, tests/install/test_compiled.py and the e2e session server build the
# call path with mypyc (setup.py). Python's headers come with the interpreter (pyenv, python3-dev).
compiler:
	@command -v gcc >/dev/null || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc >/dev/null; }

# podman, runc, and the images docker/*/Dockerfile start FROM (debootstrap, cached; needs root).
container-bases:
	bash scripts/container-bases.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check callscreen tests bench
	$(VENV)/bin/ruff format --check callscreen tests bench
	$(VENV)/bin/mypy

test: $(STAMP) compiler asterisk-root browser systemd-tools container-bases postgres lint
	$(VENV)/bin/pytest -q

unit: $(STAMP) compiler postgres
	$(VENV)/bin/pytest -q tests/unit tests/integration tests/web tests/install

e2e: $(STAMP) compiler asterisk-root browser postgres
	$(VENV)/bin/pytest -q tests/e2e

# The README's screenshots of the portal (user and admin pages, desktop and phone widths).
screenshots: $(STAMP) browser
	CALLSCREEN_SCREENSHOTS=docs/screenshots $(VENV)/bin/pytest -q tests/browser -k screenshot

# docker/: both images built and run with podman-compose, the README's lines, real calls.
docker: $(STAMP) container-bases
	$(VENV)/bin/pytest -q tests/docker

# The benchmark: ours vs a panoramisk peer vs a bare ceiling, scale, start-up, memory (~8 min).
bench: $(STAMP) compiler
	$(PY) -m bench.run

# Call setup through the real Asterisk (SIPp, 100 calls/s): the shipped routine with callscreen
# vs a bare FastAGI server vs no routine, INVITE -> 200 OK p50/p99 (~4 min; root). Installs SIPp
# (Debian's sip-tester) and builds the Asterisk root filesystem when missing.
bench-sipp: $(STAMP) compiler
	$(PY) -m bench.sipp

# A long run of mixed calls; file descriptors, tasks and memory sampled every 10 s.
soak: $(STAMP)
	$(PY) -m bench.soak

# Property tests at 25,000 inputs each (14 properties: 350,000 inputs); prints the statistics.
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(VENV)/bin/pytest -q -p no:cacheprovider --timeout 0 \
		--hypothesis-show-statistics tests/unit/test_properties.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
