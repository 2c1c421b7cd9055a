# tonebridge: every target installs what it needs first (idempotent).
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NPM_STAMP := node_modules/.installed
SYS_STAMP := .sys-deps-checked
LISTEN ?= 127.0.0.1:8080
PYTEST_ARGS ?=

.PHONY: setup test run lint bench clean sysdeps

setup: $(STAMP) $(NPM_STAMP) sysdeps

# System tools the tests use as independent oracles. Installed when root on Debian.
sysdeps:
	@missing=""; for t in sox multimon-ng node npm curl; do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing:$$missing"; \
	    pkgs=$$(echo "$$missing" | sed 's/\bnode\b/nodejs/'); \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$pkgs >/dev/null; \
	  else \
	    echo "missing system tools:$$missing (install them, e.g. apt-get install sox multimon-ng nodejs npm)"; exit 1; \
	  fi; \
	fi

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

test: setup
	$(BIN)/pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check host firmware tests
	$(BIN)/ruff format --check host tests

run: setup
	$(BIN)/tonebridge serve --demo --listen $(LISTEN)

bench: setup
	$(BIN)/python -m tonebridge.bench

clean:
	rm -rf $(VENV) node_modules .pytest_cache build *.egg-info
