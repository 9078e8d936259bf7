"""The audit sealer's metrics, beside the service's own (`observability/metrics.py`) in the same registry."""

from prometheus_client import Counter, Gauge

SEALER_UP = Gauge("audit_sealer_up", "1 while the audit sealer is sealing; 0 while it is starting or backing off.")
SEALER_RESTARTS = Counter("audit_sealer_restarts", "Times the audit sealer started over after an error escaped.")
SEALER_ABORTS = Counter("audit_sealer_aborted_transactions", "Sealing transactions aborted (then tried again).")
SEALER_RECORDS = Counter(
    "audit_sealer_records", "Intake records the sealer committed, by outcome: sealed or dead_lettered.", ["outcome"]
)


def sealer_up(up: bool) -> None:
    SEALER_UP.set(1 if up else 0)


def sealer_restarted() -> None:
    SEALER_RESTARTS.inc()


def sealer_aborted() -> None:
    SEALER_ABORTS.inc()


def sealer_sealed(sealed: int, dead_lettered: int) -> None:
    """A sealing transaction committed `sealed` entries and `dead_lettered` records that were not entries."""
    SEALER_RECORDS.labels("sealed").inc(sealed)
    SEALER_RECORDS.labels("dead_lettered").inc(dead_lettered)
