"""The sealer: the audit log's only writer. It reads agent.tasks.audit.intake and appends each entry, chained, to
the same partition of agent.tasks.audit.

One transactional producer per partition: the sealed records and the intake offset commit together, so an entry
is sealed exactly once, and a new owner of the partition fences the old one before reading the last hash. The
chain of a partition therefore has one writer at a time and never forks.

A record on the intake that is not an audit entry (a tombstone, other bytes) is dead-lettered in the same transaction,
with why in its headers. The sealer is supervised: whatever escapes its loop (a broker away at start, a topic not
there yet) is logged and counted, and it starts over after a backoff, doubling up to 30 s; `up` and the
`audit_sealer_up` gauge say whether it is sealing now."""

import asyncio
import json
import logging
from typing import Any, cast

from ...kafka.client import ERRORS, committed_reader, fenced, transactional_producer
from ...kafka.port import Consumer, Partition, Record, TransactionalProducer
from ...kafka.producer import stop_producer
from ...kafka.reading import POLL_TIMEOUT_MS, read_to_end
from ...settings import Settings
from ..clients import send_dead_letter
from . import metrics, names
from .chain import GENESIS, canonical, seal
from .settings import AuditSettings, get_audit_settings

log = logging.getLogger(__name__)

MAX_RESTART_BACKOFF_SECONDS = 30.0
AUDIT_LOG_WAIT_SECONDS = 40.0
"""How long the sealer waits for its log to exist before it starts over: aiokafka's request timeout, which bounded
the wait when aiokafka did the waiting."""


class AuditLogMissingError(TimeoutError):
    """The audit log does not exist (yet)."""


async def audit_log_exists(reader: Consumer) -> None:
    """Return once the audit log exists, asking once a second. Asked for the offsets of a topic it does not know,
    aiokafka retries in a busy loop: a whole core until its request timeout, on every restart of the sealer."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + AUDIT_LOG_WAIT_SECONDS
    while names.AUDIT_TOPIC not in await reader.topics():
        if loop.time() > deadline:
            raise AuditLogMissingError(f"the audit log {names.AUDIT_TOPIC} does not exist; is its KafkaTopic ready?")
        await asyncio.sleep(1)


class NotAnEntryError(ValueError):
    """An intake record that is not an audit entry: a JSON object."""


def entry_of(value: bytes | None) -> dict[str, Any]:
    """The audit entry an intake record holds; NotAnEntryError when it holds none."""
    if not value:
        raise NotAnEntryError("no value: not an audit entry")
    try:
        entry = json.loads(value)
    except ValueError as error:  # not JSON, or not UTF-8
        raise NotAnEntryError(f"not an audit entry: {error}") from error
    if not isinstance(entry, dict):
        raise NotAnEntryError(f"not an audit entry: a JSON {type(entry).__name__}, not an object")
    return entry


async def last_hash(settings: Settings, partition: int) -> str:
    """The hash of the last committed record of the audit log's `partition`, GENESIS when it has none."""
    reader = committed_reader(settings)
    try:
        await reader.start()
        await audit_log_exists(reader)
        tp = Partition(names.AUDIT_TOPIC, partition)
        reader.assign([tp])
        begin = (await reader.beginning_offsets([tp]))[tp]
        end = (await reader.end_offsets([tp]))[tp]
        window = 64
        while True:
            start = max(begin, end - window)
            last: Record | None = None
            async for batch in read_to_end(reader, tp, start, end):
                last = batch[-1] if batch else last
            if last is not None:
                hashed: str = json.loads(cast(bytes, last.value))["hash"]  # the sealer's records all have one
                return hashed
            if start == begin:
                return GENESIS
            window *= 8  # only aborted transactions and markers in the window: look further back
    finally:
        await reader.stop()


class _Rebalance:
    def __init__(self, sealer: "AuditSealer") -> None:
        self._sealer = sealer

    async def on_partitions_revoked(self, revoked: set[Partition]) -> None:
        await self._sealer.release(revoked)

    async def on_partitions_assigned(self, assigned: set[Partition]) -> None:
        log.info("sealing audit partitions %s", sorted(tp.partition for tp in assigned))


class AuditSealer:
    def __init__(
        self, settings: Settings, audit: AuditSettings | None = None, restart_backoff_seconds: float = 1.0
    ) -> None:
        self._settings = settings
        self._audit = audit or get_audit_settings()
        self._key = self._audit.chain_key.get_secret_value().encode()
        self._restart_backoff_seconds = restart_backoff_seconds
        self._consumer: Consumer | None = None
        self._producers: dict[Partition, TransactionalProducer] = {}
        self._prev: dict[Partition, str] = {}
        self._lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.up = False
        """Whether the sealer is in its loop now: false before it joined, and while it backs off to restart."""
        self.restarts = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name="audit-sealer")

    @property
    def running(self) -> bool:
        """Whether the supervisor is alive (it is until `stop`): sealing, or backing off to start over."""
        return self._task is not None and not self._task.done()

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()  # a transaction cut short aborts; its entries are sealed again by the next owner
            await asyncio.gather(self._task, return_exceptions=True)
        await self._close()

    async def release(self, partitions: set[Partition]) -> None:
        async with self._lock:
            for tp in partitions:
                self._prev.pop(tp, None)
                producer = self._producers.pop(tp, None)
                if producer is not None:
                    await stop_producer(producer, self._settings.shutdown_timeout_seconds)

    async def _supervise(self) -> None:
        backoff = self._restart_backoff_seconds
        while not self._stopping.is_set():
            try:
                await self._run()
            except Exception:  # whatever it is, a sealer that stops leaves the intake to expire unsealed
                log.exception("the audit sealer stopped on an error; it starts over in %.1f s", backoff)
            finally:
                self._set_up(False)
                await self._close()
            if self._stopping.is_set():
                return
            self.restarts += 1
            metrics.sealer_restarted()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_RESTART_BACKOFF_SECONDS)

    def _set_up(self, up: bool) -> None:
        self.up = up
        metrics.sealer_up(up)

    async def _close(self) -> None:
        """Give every partition up and leave the group: a restart begins afresh."""
        await self.release(set(self._producers))
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()

    async def _run(self) -> None:
        consumer = self._consumer = committed_reader(
            self._settings,
            group_id=names.SEALER_GROUP,
            from_earliest=True,
            client_id=f"{self._settings.kafka_client_id}-audit-sealer",
        )
        consumer.subscribe([names.INTAKE_TOPIC], listener=_Rebalance(self))
        await consumer.start()
        self._set_up(True)
        while not self._stopping.is_set():
            batch = await consumer.getmany(timeout_ms=POLL_TIMEOUT_MS)
            for tp, records in batch.items():
                async with self._lock:
                    if tp not in consumer.assignment():
                        continue
                    if tp not in self._producers:
                        await self._prepare(consumer, tp)  # moves the position: these records come again
                        continue
                    # Past the last record handed over and past the commit marker after it: committed, the
                    # group has no lag of 1 at rest behind a transactional intake.
                    read_to = await consumer.position(tp)
                    await self._seal(consumer, tp, records, read_to)

    async def _prepare(self, consumer: Consumer, tp: Partition) -> None:
        """Fence the partition's previous sealer, then resume from the committed intake offset and last hash."""
        producer = transactional_producer(self._settings, f"{self._audit.transactional_id_prefix}{tp.partition}")
        await fenced(producer, self._settings.shutdown_timeout_seconds)
        try:  # also when stop() cancels us mid-way: a started producer is always stopped
            self._prev[tp] = await last_hash(self._settings, tp.partition)
            committed = await consumer.committed(tp)
            if committed is None:
                committed = (await consumer.beginning_offsets([tp]))[tp]
            consumer.seek(tp, committed)  # an offset, not seek_to_beginning(), whose reset may come too late
        except BaseException:
            await stop_producer(producer, self._settings.shutdown_timeout_seconds)
            raise
        self._producers[tp] = producer

    async def _seal(self, consumer: Consumer, tp: Partition, records: list[Record], read_to: int) -> None:
        producer = self._producers[tp]
        prev = self._prev[tp]
        sealed_count = dead_count = 0
        try:
            async with producer.transaction():
                sent: list[asyncio.Future[Any]] = []
                for record in records:
                    try:
                        entry = entry_of(record.value)
                    except NotAnEntryError as error:
                        log.error("%s[%d]@%d dead-lettered: %s", *tp, record.offset, error)
                        sent.append(await send_dead_letter(producer, names.DEAD_LETTER_TOPIC, record, error))
                        dead_count += 1
                        continue
                    sealed = seal(self._key, prev, entry)
                    sent.append(
                        await producer.send(
                            names.AUDIT_TOPIC, canonical(sealed), key=record.key, partition=tp.partition
                        )
                    )
                    prev = sealed["hash"]
                    sealed_count += 1
                # aiokafka commits a transaction whose sends failed: only the futures tell. Any failure aborts, or
                # the chain would link to a record that is not in the log.
                await asyncio.gather(*sent)
                await producer.send_offsets_to_transaction({tp: read_to}, consumer.group_metadata())
        except ERRORS.any as error:
            # Aborted, or its outcome unknown: fence and start over from what is committed.
            log.warning("sealing %s[%d] failed: %r; resuming from the committed offset", *tp, error)
            metrics.sealer_aborted()
            self._producers.pop(tp)
            self._prev.pop(tp)
            await stop_producer(producer, self._settings.shutdown_timeout_seconds)
            consumer.seek(tp, records[0].offset)
        else:
            self._prev[tp] = prev
            metrics.sealer_sealed(sealed_count, dead_count)
