"""The dead-letter topic: where a message goes when it cannot be processed, so its partition keeps flowing."""

from aiokafka import AIOKafkaProducer, ConsumerRecord


def dead_letter_headers(
    record: ConsumerRecord[bytes, bytes], error: BaseException, attempts: int
) -> list[tuple[str, bytes]]:
    """The original headers plus where the message came from and why it failed."""
    return [
        *record.headers,
        ("dlq.original.topic", record.topic.encode()),
        ("dlq.original.partition", str(record.partition).encode()),
        ("dlq.original.offset", str(record.offset).encode()),
        ("dlq.error.type", type(error).__name__.encode()),
        ("dlq.error.message", str(error)[:1000].encode()),
        ("dlq.attempts", str(attempts).encode()),
    ]


class DeadLetterPublisher:
    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer

    async def send(self, record: ConsumerRecord[bytes, bytes], error: BaseException, attempts: int) -> None:
        """Store the message on `<topic>.dlq`, same key and value, and wait for the acknowledgement."""
        await self._producer.send_and_wait(
            f"{record.topic}.dlq",
            record.value,
            key=record.key,
            headers=dead_letter_headers(record, error, attempts),
        )
