# Delivery guarantees under kill -9: `make chaos` renders the exactly-once, at-least-once and at-most-once
# services, runs them against a local broker of its own, kills and restarts their workers, and fails if a
# guarantee broke (see docs/delivery-guarantees.md); its data-pipeline rows add PostgreSQL and Kafka Connect with
# Debezium and kill the Connect worker too. Needs uv; the launcher fetches Java and Maven when missing.
# Rows run two at a time, each lane on a stack of its own (CHAOS_ARGS=--lanes 1 for one after another).
# Included from the top Makefile, which defines the `venv` target (.venv with copier, pyyaml, pytest).

CHAOS_PYTHON ?= .venv/bin/python
CHAOS_ARGS ?=

.PHONY: chaos
chaos: venv ## Kill -9 the services of each delivery guarantee mid-stream; fail if a guarantee broke
	$(CHAOS_PYTHON) -m tools.chaos.run $(CHAOS_ARGS)
