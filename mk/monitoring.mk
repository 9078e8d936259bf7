# The generated alerts and dashboards, proven with Prometheus's own tools: `make monitoring` runs promtool on every
# variant's rules, its unit tests and dashboard queries, then fires the lag alert in a real Prometheus scraping a real
# service (tests/operations/test_monitoring.py, also part of `make test`). Prometheus and promtool come from Debian's
# package, unpacked under ~/.cache/kafka-events by tools/monitoring/prometheus.py.
# Included from the top Makefile, which defines the `venv` target (.venv with copier, pyyaml, pytest).

MONITORING_PYTHON ?= .venv/bin/python

.PHONY: monitoring
monitoring: venv ## Check the generated alerts and dashboards with promtool, and fire an alert in a real Prometheus
	$(MONITORING_PYTHON) -m pytest -q tests/operations/test_monitoring.py
