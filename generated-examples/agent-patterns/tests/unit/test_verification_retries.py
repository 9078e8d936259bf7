"""Retries of transactional writes that Kafka 4 could not verify yet are kept out of the warnings."""

import logging

from aiokafka import TopicPartition
from aiokafka.errors import NotEnoughReplicasError, RequestTimedOutError

from agent_ops.kafka.verification_retries import VerificationRetries

RETRY = "Got error produce response on topic-partition %s, retrying. Error: %s"


def retry_record(partition: int, error: type[Exception]) -> logging.LogRecord:
    tp = TopicPartition("out", partition)
    return logging.LogRecord("aiokafka.producer.sender", logging.WARNING, __file__, 1, RETRY, (tp, error), None)


def test_one_line_a_minute_per_partition_at_info() -> None:
    quiet = VerificationRetries(interval_seconds=60)
    first, again = retry_record(0, NotEnoughReplicasError), retry_record(0, NotEnoughReplicasError)
    other_partition = retry_record(1, NotEnoughReplicasError)
    assert quiet.filter(first)
    assert first.levelno == logging.INFO
    assert "nothing lost or doubled" in first.getMessage()
    assert not quiet.filter(again)
    assert quiet.filter(other_partition)


def test_other_errors_keep_their_warning() -> None:
    record = retry_record(0, RequestTimedOutError)
    assert VerificationRetries().filter(record)
    assert record.levelno == logging.WARNING
