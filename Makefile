# Two commands on a fresh machine: `make quickstart` and `make test`. Both set up .venv/ first.
.PHONY: install quickstart test lint bench

install:
	bash scripts/install.sh

quickstart: install
	.venv/bin/tunesmith quickstart

test:
	bash scripts/install.sh --test
	.venv/bin/python -m pytest

lint:
	.venv/bin/ruff check src tests bench

bench: install
	.venv/bin/python -m pip install -q -e ".[bench]"
	.venv/bin/python bench/run_all.py
