# The two set-up commands of the README: `make demo` and `make test`.
VENV ?= .venv
export VLLM_LOGGING_LEVEL ?= ERROR

.PHONY: install demo test lint bench

install:
	bash scripts/install.sh

demo: install
	$(VENV)/bin/reasoner solve "What is 12 + 30?" --budget 128

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint
	$(VENV)/bin/python -m pytest

bench: install
	$(VENV)/bin/python bench/overhead.py
