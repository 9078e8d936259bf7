"""Where the data pipelines (the outbox and change data capture) run on the real broker besides their variant's
suite: tests/patterns/database/test_chart_processes.py runs their secured charts, one per security answer, each
with a guarantee the data-pipelines variant (at-least-once, plaintext) does not run."""

from __future__ import annotations

SECURED_PIPELINES = {
    "scram-tls": "data-pipelines, scram-tls, at-most-once",
    "mtls": "data-pipelines, mtls, exactly-once",
}
CHART_PROCESSES_RUNS = {
    ("security", "scram-tls"): SECURED_PIPELINES["scram-tls"],
    ("security", "mtls"): SECURED_PIPELINES["mtls"],
    ("delivery_guarantee", "at-most-once"): SECURED_PIPELINES["scram-tls"],
    ("delivery_guarantee", "exactly-once"): SECURED_PIPELINES["mtls"],
}
