# What a generated service's layers cost: `make bench` renders the default and exactly-once services, starts a local
# stack of its own on 127.0.0.1 (stopped afterwards), and measures publish, HTTP ingest, consumers, serde and
# scale-out next to raw aiokafka, a bare FastAPI endpoint and Kafka's own Java producer (docs/performance.md).
# Prints a table; writes bench.json and bench.png into BENCH_OUT. Needs uv and wrk (apt-get install -y wrk).
# About four minutes on 2 cores. tools/bench/slow_handlers.py measures CONSUMER_CONCURRENCY separately.
# Included from the top Makefile, which defines the `venv` target.

BENCH_PYTHON ?= .venv/bin/python
BENCH_OUT ?= build/bench
BENCH_ARGS ?=

.PHONY: bench
bench: venv ## Measure the service's layers against raw aiokafka, bare FastAPI and Kafka's ProducerPerformance
	$(BENCH_PYTHON) -m tools.bench.layers --out "$(BENCH_OUT)" $(BENCH_ARGS)
