# madoguchi — `make demo` and `make test` each do the whole set-up on a fresh Debian/Ubuntu machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

# What the demo needs (CJK font, GL for Kivy) and what the full test suite needs on top
# (pcscd + virtual reader, PostgreSQL, chromium, offline speech, QR decoding, Xvfb).
DEMO_APT := fonts-ipaexfont-gothic fonts-noto-cjk fonts-nanum fonts-droid-fallback libgl1 libgl1-mesa-dri libegl1 libmtdev1 swig libpcsclite-dev espeak-ng sox
TEST_APT := $(DEMO_APT) pcscd vsmartcard-vpcd postgresql chromium libzbar0 xvfb poppler-utils

.PHONY: demo test setup setup-test apt-demo apt-test lint bench clean

DEMO_ARGS ?= --busy

demo: apt-demo $(VENV)/.installed
	$(BIN)/python run.py demo $(DEMO_ARGS)

test: apt-test $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -p no:cacheprovider

setup: apt-demo $(VENV)/.installed
setup-test: apt-test $(VENV)/.installed

# Install missing Debian packages when root; otherwise print the exact command and stop.
apt-demo:
	@./tools/apt-ensure $(DEMO_APT)
apt-test:
	@./tools/apt-ensure $(TEST_APT)

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

lint: $(VENV)/.installed
	$(BIN)/ruff check .

bench: $(VENV)/.installed
	for b in bench/*_bench.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) var *.egg-info
