# tonebridge: every target installs what it needs first (idempotent).
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NPM_STAMP := node_modules/.installed
LISTEN ?= 127.0.0.1:8080
PYTEST_ARGS ?=

.PHONY: setup test quick run lint bench clean sysdeps mutants deploy hil fleet

setup: sysdeps $(STAMP) $(NPM_STAMP)

# System tools the tests use as independent oracles (command:Debian package), and the headless
# browser the dashboard's tests drive (chromium + chromedriver, through Selenium; nothing is
# downloaded at run time). Installed when root on Debian; otherwise named, and setup fails.
SYSTOOLS := sox:sox multimon-ng:multimon-ng node:nodejs npm:npm curl:curl \
            arm-none-eabi-objdump:binutils-arm-none-eabi ngspice:ngspice \
            xtensa-lx106-elf-objdump:binutils-xtensa-lx106 \
            chromium:chromium chromedriver:chromium-driver /usr/sbin/mosquitto:mosquitto
# Shared libraries (file pattern:Debian package): spandsp's DTMF generator, the bench's
# software reference (host/tonebridge/bench/spandsp.py, through ctypes)
SYSLIBS := libspandsp.so.2:libspandsp2
sysdeps:
	@missing=""; for t in $(SYSTOOLS); do command -v $${t%%:*} >/dev/null || missing="$$missing $${t#*:}"; done; \
	for l in $(SYSLIBS); do ldconfig -p | grep -q "$${l%%:*}" || missing="$$missing $${l#*:}"; done; \
	$(PY) -c "import ensurepip, venv" 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing system packages:$$missing (install them, e.g. sudo apt-get install$$missing)"; exit 1; \
	  fi; \
	fi

$(BIN)/python: | sysdeps
	$(PY) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	# micropython-lib's umqtt.simple for simulated Wi-Fi boards (tonebridge/sim/mplib.py)
	$(BIN)/python -m tonebridge.sim.mplib >/dev/null
	touch $@

$(NPM_STAMP): package.json package-lock.json | sysdeps
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

test: setup
	$(BIN)/pytest $(PYTEST_ARGS)

# The suite less its slow, emulated-RP2040 and browser tests (make test runs those too): the
# run to repeat while working, a few minutes here (docs/testing.md)
QUICK := not slow and not emu and not browser
quick: setup
	$(BIN)/pytest -m "$(QUICK)" $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check host firmware tests
	$(BIN)/ruff format --check host firmware tests

run: setup
	$(BIN)/tonebridge serve --demo --listen $(LISTEN)

# A demo fleet on this machine (docs/fleet.md): Mosquitto, two agents with simulated Picos,
# one front end on LISTEN; prints the curl lines, Ctrl-C stops it
fleet: setup
	$(BIN)/python -m tonebridge.fleet.demo --listen $(LISTEN)

bench: setup
	$(BIN)/python -m tonebridge.bench

# A real board: `make deploy PORT=/dev/ttyACM0 BOARD=pico` installs the firmware with mpremote
# (docs/deploy.md); `make hil PORT=/dev/ttyACM0 BOARD=pico` runs the hardware-in-the-loop tests
# against it (BOARD is checked against what the board reports). PORT may be any pyserial URL,
# e.g. sim://pico. DEPLOY_ARGS: more `tonebridge deploy` options (--set KEY=VALUE, --source).
PORT ?=
BOARD ?= pico
DEPLOY_ARGS ?=
HIL_USAGE := make hil PORT=/dev/ttyACM0 BOARD=pico runs the hardware-in-the-loop tests (tests/hil, tests/protocol/test_hil.py) against a board flashed with make deploy; no PORT given, nothing run
deploy: setup
	@if [ -z "$(PORT)" ]; then echo "usage: make deploy PORT=/dev/ttyACM0 BOARD=pico (boards: pico pico2 picow pico-mt8880 esp32-i2s esp32s3-i2s)"; exit 2; fi
	$(BIN)/tonebridge deploy --port "$(PORT)" --board "$(BOARD)" $(DEPLOY_ARGS)

hil:
	@if [ -z "$(PORT)" ]; then echo "$(HIL_USAGE)"; else \
	  $(MAKE) --no-print-directory setup && \
	  $(BIN)/pytest -m hil -p no:cacheprovider tests/hil tests/protocol/test_hil.py \
	    --port "$(PORT)" --board "$(BOARD)" $(PYTEST_ARGS); fi

# Mutation testing of the firmware (docs/testing.md): MUTANTS="engine player" for some modules.
MUTANTS ?=
MUT_STAMP := $(VENV)/.mutation-installed
$(MUT_STAMP): $(STAMP)
	$(BIN)/pip install -q -e '.[dev,mutation]'
	touch $@
mutants: setup $(MUT_STAMP)
	nice -n 15 $(BIN)/python -m tonebridge.testing.mutation $(MUTANTS)

clean:
	rm -rf $(VENV) node_modules .pytest_cache build *.egg-info
