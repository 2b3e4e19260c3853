# The README's commands: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 1

.PHONY: install run serve migrate seed test lint typecheck pytest format clean bench-load audit \
	bench bench-search bench-relevance bench-import bench-images

install:  ## install uv if missing, then the locked dependencies
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1 || \
		$(PYTHON) -m pip install --quiet --user uv || \
		$(PYTHON) -m pip install --quiet --user --break-system-packages uv
	$(UV) sync --frozen

migrate: install
	$(UV) run catalog migrate

seed: migrate
	$(UV) run catalog seed --if-empty

run: seed  ## migrate, load the demo catalog if empty, serve on http://127.0.0.1:8000
	$(UV) run catalog serve --host $(HOST) --port $(PORT) --workers $(WORKERS)

serve:
	$(UV) run catalog serve --host $(HOST) --port $(PORT) --workers $(WORKERS)

lint: install
	$(UV) run ruff check src tests migrations bench
	$(UV) run ruff format --check src tests migrations bench

typecheck: install
	$(UV) run mypy

pytest: install  ## two test processes (pytest-xdist): each has its own databases and Redis prefix
	$(UV) run pytest -n 2 --cov --cov-report=term

test: lint typecheck pytest  ## lint, type-check and run the whole suite on both profiles

audit: install  ## known vulnerabilities in the locked dependencies (pip-audit; docs/security.md)
	$(UV) run python .ci/audit.py

bench: bench-search bench-relevance  ## both benchmarks; pass options in SEARCH_ARGS= and RELEVANCE_ARGS=

bench-search: install  ## search/suggest latency on 100,000 generated products (PostgreSQL + Redis)
	$(UV) run python -m bench.search $(SEARCH_ARGS)

bench-relevance: install  ## NDCG@10 / recall@10 of the judged demo queries, SQLite and PostgreSQL
	$(UV) run python -m bench.relevance $(RELEVANCE_ARGS)

bench-import: install  ## import/export rows/s, CPU per 1,000 rows, peak RSS: 100,000 products, 300,000 variants (PostgreSQL); IMPORT_ARGS=
	$(UV) run python -m bench.imports $(IMPORT_ARGS)

format: install
	$(UV) run ruff format src tests migrations bench
	$(UV) run ruff check --fix src tests migrations bench

bench-images: install  ## p95 of product reads idle vs while 4 large images are processed; IMAGES_ARGS=
	$(UV) run python -m bench.images $(IMAGES_ARGS)

bench-load: install  ## wrk load test of the real server on a 100,000-product catalog; options in LOAD_ARGS=
	@command -v wrk >/dev/null 2>&1 || { \
		SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
		$$SUDO apt-get update && $$SUDO apt-get install -y wrk; }
	$(UV) run python -m bench.load $(LOAD_ARGS)

clean:
	rm -rf var/ .pytest_cache .mypy_cache .ruff_cache .coverage
