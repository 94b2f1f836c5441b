# Two entry points for a fresh machine (see README):
#   make serve   set up a virtualenv and run the server on the embedded SQLite default
#   make test    set up everything (virtualenv, the real-Asterisk root filesystem, podman and the
#                container base images) and run all tests + lint
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: serve test lint unit e2e docker fuzz bench asterisk-root container-bases clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

serve: $(STAMP)
	$(VENV)/bin/callscreen serve

asterisk-root:
	bash scripts/asterisk-root.sh

# podman, runc, and the images docker/*/Dockerfile start FROM (debootstrap, cached; needs root).
container-bases:
	bash scripts/container-bases.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check callscreen tests bench
	$(VENV)/bin/ruff format --check callscreen tests bench
	$(VENV)/bin/mypy

test: $(STAMP) asterisk-root container-bases lint
	$(VENV)/bin/pytest -q

unit: $(STAMP)
	$(VENV)/bin/pytest -q tests/unit tests/integration tests/web

e2e: $(STAMP) asterisk-root
	$(VENV)/bin/pytest -q tests/e2e

# docker/: both images built and run with podman-compose, the README's lines, real calls.
docker: $(STAMP) container-bases
	$(VENV)/bin/pytest -q tests/docker

# The benchmark: ours vs a panoramisk peer vs a bare ceiling, scale, start-up, memory (~8 min).
bench: $(STAMP)
	$(PY) -m bench.run

# A long run of mixed calls; file descriptors, tasks and memory sampled every 10 s.
soak: $(STAMP)
	$(PY) -m bench.soak

# Property tests at 25,000 inputs each (14 properties: 350,000 inputs); prints the statistics.
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(VENV)/bin/pytest -q -p no:cacheprovider --timeout 0 \
		--hypothesis-show-statistics tests/unit/test_properties.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
