# kafka-events: the template, and the proof that every variant it renders works against real Kafka.
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help venv test check lint render demo examples

help: ## List the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

venv: $(VENV)/.installed ## Create .venv with Copier, the test tools and uv

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

lint: venv ## Lint and type-check the repo's own code
	$(PY) -m ruff format --check .
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m tools.launcher --check
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --quiet

# pytest workers: each runs whole variants (or modules, or a chaos lane) on a stack of its own. The suites wait on
# Kafka, kills and rebalances much of the time: with three, two cores were 79% busy over a run; with four, 88%; a
# fifth fills more of the waits.
TEST_WORKERS ?= 5

test: lint ## Everything CI runs: every variant rendered, checked and tested against real Kafka, and the chaos lanes
	$(PY) -m pytest -n $(TEST_WORKERS) --durations=25

# The fast lane, no broker: lint and types, the answer and spec tests (the core's and each pattern's), and the first
# CHECK_COMBINATIONS rows of the covering array (the rows that cover the most pairs of answers), each rendered,
# formatted, linted, type-checked and unit-tested. `make test` renders every row. About four minutes on 2 cores.
CHECK_COMBINATIONS ?= 4

check: lint ## The fast lane while working (no broker, ~4 min): lint, types, answer tests, a few covering-array renders
	COMBINATIONS=$(CHECK_COMBINATIONS) $(PY) -m pytest -n $(TEST_WORKERS) -q -p no:cacheprovider tests/spec/test_answers.py tests/patterns/*/test_spec.py tests/render/test_combinations.py

render: venv ## Render one variant into DEST, replacing what DEST held: make render VARIANT=default DEST=/tmp/agent-tasks
	@test -n "$(VARIANT)" -a -n "$(DEST)" || { echo "usage: make render VARIANT=<name> DEST=<dir>; variants: $$(ls tests/variants | sed 's/.yml//' | tr '\n' ' ')"; exit 2; }
	@test ! -e "$(DEST)" || echo "make render: replacing $(DEST) (a fresh render, not a git repository: commit it before copier update)"
	$(PY) -m tools.render "$(VARIANT)" "$(DEST)"

demo: venv ## Render the default service, start Kafka, POST a task, watch it published and consumed, stop all
	$(PY) -m tools.demo

examples: venv ## Re-render generated-examples/ (default, agent-patterns, data-pipelines) from the template
	$(PY) -m tools.examples --write

include mk/*.mk
