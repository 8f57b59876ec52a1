# Surveyor: `make up` runs it, `make test` proves it. Both install what they need first.

VENV    ?= .venv
# Keep the bytecode of what runs, also where PYTHONDONTWRITEBYTECODE=1 is set for everything:
# else every process compiles every module it imports again.
unexport PYTHONDONTWRITEBYTECODE
PYTHON  ?= python3
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
# axe-core for the browser tests' accessibility checks: a test tool, never shipped.
NODE_STAMP := node_modules/.installed
SITE_SKIP  := /site-packages/(sympy|mpmath|numpy|pandas|networkx|moto|cfnlint|graphql|pymongo|aws_xray_sdk|mypy|mypyc|pip|setuptools)/

.PHONY: up cluster test lint bench install system-deps test-deps bench-deps clean

# The virtual environment's pip installs uv, and uv installs Surveyor with its development
# extras (and a current pip, which the packaging test uses): about 10 s where pip alone took
# 50-70 s. Nothing is byte-compiled at install: each module is compiled when first imported,
# and its bytecode kept (see below), so only what runs is compiled.
$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[dev]' pip
	touch $(STAMP)

install: $(STAMP)

# npm comes with system-deps; `npm ci` installs exactly what package-lock.json pins.
$(NODE_STAMP): package.json package-lock.json | system-deps
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

test-deps: $(NODE_STAMP)

# Debian packages the tests use (a real PostgreSQL server among them).
system-deps:
	scripts/install-system-deps

up: install
	$(BIN)/surveyor up

# Many processes on one machine, by hand: PostgreSQL, two consoles, two workers, three
# explorers (docs/deploy.md); Ctrl-C stops them all (`make cluster CLUSTER_ARGS=--keep` keeps
# their logs).
cluster: install system-deps
	$(BIN)/python scripts/cluster.py $(CLUSTER_ARGS)

# The last step: only the store writes tasks (its write path keeps versions, tabs, counts, events).
lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/python scripts/check_task_writes.py src

# One file per process at a time; tests/conftest.py orders the files, longest tiers first.
# Surveyor's own modules, the tests and the installed packages are compiled once first, in
# parallel, not by the four test processes at once as they start (34 s against 12 s for their
# four collections). Large packages no test process imports as it starts are left to be
# compiled when used (SITE_SKIP): 9 s instead of 22 s.
# Four processes on a 2-CPU machine: a third of the suite's time is spent waiting on
# consoles, explorers, scans and browsers, which the extra processes fill. The lint runs
# beside the tests (on the CPU they leave idle); its output follows theirs, and either
# failing fails the target.
test: install system-deps test-deps
	$(BIN)/python -m compileall -q -j 0 -x '$(SITE_SKIP)' src tests $$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
	@lint_log=$$(mktemp); \
	$(MAKE) --no-print-directory lint >"$$lint_log" 2>&1 & lint_pid=$$!; \
	$(BIN)/pytest -n 4 --dist loadfile --no-loadscope-reorder; tests=$$?; \
	wait $$lint_pid; linted=$$?; \
	cat "$$lint_log"; rm -f "$$lint_log"; \
	if [ $$linted -ne 0 ]; then echo "make test: the lint failed (above)" >&2; fi; \
	[ $$tests -eq 0 ] && [ $$linted -eq 0 ]

# The peers the benchmarks compare against (nmap), on top of system-deps.
bench-deps:
	scripts/install-system-deps --bench

bench: install system-deps bench-deps
	$(BIN)/python -m bench.tasks_list
	$(BIN)/python -m bench.pages
	$(BIN)/python -m bench.scan
	$(BIN)/python -m bench.scan_lab
	$(BIN)/python -m bench.identify
	$(BIN)/python -m bench.rdns
	$(BIN)/python -m bench.fleet
	$(BIN)/python -m bench.scheduler
	$(BIN)/python -m bench.processing
	$(BIN)/python -m bench.connectors
	$(BIN)/python -m bench.imports --memory-gb 1
	$(BIN)/python -m bench.system_tasks
	$(BIN)/python -m bench.cli_start

clean:
	rm -rf $(VENV) node_modules build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
