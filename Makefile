# The two set-up commands of the README:
#   make demo   creates .venv, installs hfdae and runs `hfdae demo` on the embedded default model
#   make test   creates .venv, installs hfdae with its test extras (and Debian's chromium if missing) and
#               runs the test suite, which also builds the wheel, installs it (not editable) into a fresh
#               environment and uses it from outside the checkout (tests/test_install.py)
# torch is installed FIRST and pinned to 2.13.0: the CPU wheel; a bare `torch` would pull a CUDA build.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0

.PHONY: demo test install install-dev browser clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.torch: $(BIN)/python
	$(BIN)/python -m pip install --quiet torch==$(TORCH_VERSION)
	touch $@

$(VENV)/.installed: $(VENV)/.torch pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.torch pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# The Space's end-to-end test drives Debian's chromium through Playwright (never `playwright install`,
# which downloads its own browsers); it fails without one.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		sudo_if_needed=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
		$$sudo_if_needed apt-get update -qq && $$sudo_if_needed apt-get install -y -qq chromium; }

demo: install
	$(BIN)/hfdae demo

test: install-dev browser
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) demo_output .pytest_cache
