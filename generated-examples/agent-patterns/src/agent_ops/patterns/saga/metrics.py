"""The saga orchestrator's metrics, beside the service's own (`observability/metrics.py`) in the same registry."""

from prometheus_client import Counter

SAGAS_FINISHED = Counter(
    "saga_finished", "Sagas that reached a final status, by status: completed, compensated or failed.", ["saga_status"]
)
SAGA_TRANSACTIONS = Counter(
    "saga_transactions",
    "The orchestrator's transactions, by outcome: committed or aborted (then tried again).",
    ["outcome"],
)


def saga_transaction(committed: bool) -> None:
    SAGA_TRANSACTIONS.labels("committed" if committed else "aborted").inc()


def saga_finished(status: str) -> None:
    SAGAS_FINISHED.labels(status).inc()
