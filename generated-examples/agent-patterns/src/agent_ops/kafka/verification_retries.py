"""Kafka 4 checks every transactional write with the transaction coordinator before appending it (KIP-890).
aiokafka speaks the protocol from before KIP-890, and to such clients a check that cannot finish yet (the
coordinator still loading, the previous transaction's markers still being written) is answered
NOT_ENOUGH_REPLICAS: a retriable error. Nothing was appended, and the idempotent producer sends the batch again
with the same sequence numbers, so nothing is lost or doubled; it costs one retry backoff (`retry_backoff_ms`).

aiokafka logs each such retry as a warning. This filter keeps one line a minute per partition, at INFO, so a
fresh broker's first transactions stay quiet while a partition that really is under its minimum in-sync
replicas still shows (and is alerted on by the broker's own metrics)."""

import logging
import time

from aiokafka.errors import NotEnoughReplicasError

SENDER_LOGGER = "aiokafka.producer.sender"


class VerificationRetries(logging.Filter):
    def __init__(self, interval_seconds: float = 60.0) -> None:
        super().__init__()
        self._interval = interval_seconds
        self._last: dict[object, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if not (isinstance(args, tuple) and len(args) == 2 and args[1] is NotEnoughReplicasError):
            return True
        now = time.monotonic()
        partition = args[0]
        if now - self._last.get(partition, -self._interval) < self._interval:
            return False
        self._last[partition] = now
        record.levelno, record.levelname = logging.INFO, "INFO"
        record.msg = f"{record.msg} (a transactional write not yet verified; retried, nothing lost or doubled)"
        return True


QUIET_VERIFICATION_RETRIES = VerificationRetries()


def quiet_verification_retries() -> None:
    """Install the filter once per process; adding the same filter again is a no-op."""
    logging.getLogger(SENDER_LOGGER).addFilter(QUIET_VERIFICATION_RETRIES)
