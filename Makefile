# Two commands on a fresh machine:  `make run`  (install + launch the app)  and  `make test`.
# Installs are stamped, so a second `make` skips what is already there.
PY      ?= $(shell command -v python3.11 || command -v python3)
VENV    := .venv
VPY     := $(VENV)/bin/python
PIP     := $(VPY) -m pip
WORKSPACE ?= workspace
HOST    ?= 127.0.0.1
PORT    ?= 7860
PYTEST_ARGS ?=

.PHONY: run test install install-test browser clean-venv

run: install
	$(VPY) app.py --workspace $(WORKSPACE) --host $(HOST) --port $(PORT)

test: install-test browser
	$(VPY) -m pytest $(PYTEST_ARGS)

install: $(VENV)/.stamp-runtime
install-test: $(VENV)/.stamp-test

$(VPY):
	$(PY) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel

# torch first: sam2 compiles against the installed torch (no build isolation, CPU-only extension).
$(VENV)/.stamp-runtime: requirements.txt | $(VPY)
	$(PIP) install -q $$(grep -E '^(torch|torchvision)==' requirements.txt)
	$(PIP) install -q -r requirements.txt
	SAM2_BUILD_CUDA=0 $(PIP) install -q --no-build-isolation sam2==1.1.0
	touch $@

$(VENV)/.stamp-test: $(VENV)/.stamp-runtime requirements-test.txt
	$(PIP) install -q -r requirements-test.txt
	touch $@

# Debian's Chromium for the real-browser tests (no browser downloads). Needs root or sudo.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

clean-venv:
	rm -rf $(VENV)
