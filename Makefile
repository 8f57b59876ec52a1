# Surveyor: `make up` runs it, `make test` proves it. Both install what they need first.

VENV    ?= .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
# axe-core for the browser tests' accessibility checks: a test tool, never shipped.
NODE_STAMP := node_modules/.installed

.PHONY: up cluster test lint bench install system-deps test-deps bench-deps clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
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
# Surveyor's own modules are compiled once first, not by the four test processes at once as
# they start (the installed packages were compiled by pip).
# Four processes on a 2-CPU machine: a third of the suite's time is spent waiting on
# consoles, explorers, scans and browsers, which the extra processes fill. The lint runs
# beside the tests (on the CPU they leave idle); its output follows theirs, and either
# failing fails the target.
test: install system-deps test-deps
	$(BIN)/python -m compileall -q -j 0 src
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
