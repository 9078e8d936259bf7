"""Exactly-once: what handling a partition's records came to (their emitted events and dead letters) is written in
one Kafka transaction with the partition's consumed offset; read_committed readers see all of it or none."""

import asyncio
import contextlib
import contextvars
import logging

from .. import correlation
from ..events.serde import EventSerde
from ..observability import metrics, tracing
from ..settings import Settings
from .client import ERRORS
from .consumer import ConsumerRunner, Failed, Handler, Outcome, where
from .hooks import NO_HOOKS, Hooks
from .outcomes import send_outcome
from .partition_work import PartitionWork
from .port import Consumer, Delivery, Partition, Record, TransactionalProducer, TransactionalProducers

log = logging.getLogger(__name__)

HandledIn = contextvars.Context | correlation.Ids
"""What a record was handled under, for sending its outcome: its context, or, when not tracing, its correlation."""

RECORD_ERRORS = ERRORS.record_rejected
"""Errors of one record's write that no retry fixes (unlike a fence, a timeout or a lost leader, which fail the
transaction, not the record)."""

UNWRITABLE: tuple[type[Exception], ...] = (*RECORD_ERRORS, ValueError, TypeError)
"""A record the client refuses to send as it is."""

UNDELIVERABLE_ABORTS = 2
"""Transactions one record's undeliverable writes may abort: its outcome's, then its dead letter's."""

FENCED = ERRORS.fenced
"""A newer producer took over the partition's transactions, or the coordinator aborted a transaction that outlived
its timeout."""


class NoAnswer(Exception):
    """The group coordinator did not answer in time."""


class UndeliverableOutcome(Exception):
    """What handling the record at `offset` came to cannot be written: its transaction is aborted."""

    def __init__(self, offset: int, error: BaseException) -> None:
        super().__init__(f"offset {offset}: {error!r}")
        self.offset = offset
        self.error = error


NOT_READY: tuple[type[Exception], ...] = (NoAnswer, *ERRORS.any)
"""Why a partition cannot be prepared for transactions now."""

TRANSACTION_FAILED: tuple[type[Exception], ...] = (UndeliverableOutcome, *ERRORS.any)
"""Why a transaction did not commit, or may not have."""


class TransactionalProcessor(ConsumerRunner):
    """Consume-process-produce in transactions, each partition's with the producer `producers` gives it.

    Handlers run outside transactions, up to `consumer_concurrency` per partition (in key order): they only
    return events. What they returned waits in memory until every record before it was handled too; then one
    short transaction writes that prefix's emitted events and dead letters, in offset order, with the offset
    after it. So a transaction never stays open for a handler's duration (`transaction_timeout_ms`, and
    read_committed readers wait for open transactions), and a crash loses only what was not written yet: it is
    handled again, and handlers may run twice, but their emitted events, dead letters and offsets take effect
    exactly once. Side effects outside Kafka are not covered: make those idempotent by event id.

    A partition starts a transaction at most every `transaction_interval_ms`, with at most
    `transaction_max_records` records: under load, records handled meanwhile share one (as Kafka Streams'
    commit interval does), and partitions' transactions run side by side, each under a lock of its own (those
    sharing one producer take turns: see `port.TransactionalProducers`).
    """

    def __init__(
        self,
        consumer: Consumer,
        serde: EventSerde,
        handler: Handler,
        settings: Settings,
        producers: TransactionalProducers,
        hooks: Hooks = NO_HOOKS,
    ) -> None:
        super().__init__(consumer, serde, handler, settings)
        self._hooks = hooks
        self._transactional = producers
        # The producer of each partition prepared for transactions.
        self._producers: dict[Partition, TransactionalProducer] = {}
        # The committed offset of each owned partition: records below it were already processed by a previous
        # owner, whatever position the consumer's fetcher happens to be at.
        self._committed: dict[Partition, int] = {}
        # Handled records' outcomes not written yet, per partition and offset, each with the work it belongs to
        # (its correlation ids; its whole context when tracing: the trace too), which the transaction writing it,
        # in another task, sends it under.
        self._outcomes: dict[Partition, dict[int, tuple[Record, Outcome, HandledIn]]] = {}
        self._writers: dict[Partition, asyncio.Task[None]] = {}
        # Set when a partition has `transaction_max_records` handled: its writer stops waiting for the interval.
        self._batch_ready: dict[Partition, asyncio.Event] = {}
        self._last_began: dict[Partition, float] = {}
        # One per partition, held while its transaction is open, so a rebalance waits for it instead of moving the
        # partition mid-way; partitions' transactions do not wait for each other.
        self._locks: dict[Partition, asyncio.Lock] = {}
        self._generation = 0
        # Each partition's position after the last poll handed its records over: past a commit marker that follows
        # the last record too. Committed once every record below it is finished, so the group's lag reads 0 at rest.
        self._read_to: dict[Partition, int] = {}
        # Partitions whose producer was fenced: re-initialising their transactional id waits until this member
        # proved it still belongs to the group (a stale member would fence the partition's real owner back).
        self._fenced: set[Partition] = set()
        # Partitions whose fenced producer the group coordinator then refused to vouch for: until the rejoin it
        # asked for revokes them, nothing of them is handled.
        self._rejoining: set[Partition] = set()
        # Records whose outcome could not be written, per partition and offset, with the last error and how many
        # transactions it aborted: handled again, they are dead-lettered instead; a second abort stops the runner.
        self._undeliverable: dict[Partition, dict[int, tuple[BaseException, int]]] = {}

    def _lock(self, tp: Partition) -> asyncio.Lock:
        lock = self._locks.get(tp)
        if lock is None:
            lock = self._locks[tp] = asyncio.Lock()
        return lock

    async def on_assigned(self, assigned: set[Partition]) -> None:
        # The fetcher reads new partitions while this runs: `_accept` may meet one first, and prepares it.
        for tp in sorted(assigned):
            async with self._lock(tp):
                try:
                    await self._prepare(tp)
                except NOT_READY as error:
                    log.warning("%s[%d] not ready for transactions yet: %r", *tp, error)

    async def _prepare(self, tp: Partition, uncommitted_from: int | None = None) -> TransactionalProducer:
        """The partition's fenced producer, and its position moved to the committed offset; once per assignment."""
        producer = self._producers.get(tp)
        if producer is None:
            if tp in self._fenced:
                await self._prove_membership(tp)
            producer = await self._transactional.acquire(tp)
            try:
                await self._resume_from_committed(tp, uncommitted_from)
            except BaseException:
                await self._transactional.release(tp, producer)
                raise
            # Ready only now: a partition with a producer is one whose position this group may process from.
            self._producers[tp] = producer
        return producer

    async def _resume_from_committed(self, tp: Partition, uncommitted_from: int | None = None) -> None:
        """Seek to the committed offset, or to `uncommitted_from` when the group never committed on `tp`."""
        # Read after fencing: the previous owner's last transaction has now completed, so this offset is final
        # (the position the consumer fetched at assignment may predate that commit).
        committed = await self._consumer.committed(tp)
        if committed is None:
            committed = uncommitted_from
        if committed is not None:
            self._committed[tp] = committed
            self._seek(tp, committed)

    def _seek(self, tp: Partition, offset: int) -> None:
        """Move `tp`'s position. Every batch polled before is stale from now on: a batch polled while the partition
        was being prepared comes from the old position, and accepting it would make its records look handed over
        while the records between `offset` and it, fetched again, would look like repeats."""
        self._consumer.seek(tp, offset)
        self.positions_reset({tp})
        self._read_to.pop(tp, None)

    async def _prove_membership(self, tp: Partition) -> None:
        """After a fence, commit the group's own committed offset of `tp` again, as this member: the coordinator
        refuses it (CommitFailedError) when the group has moved on without this member, which then rejoins instead
        of taking the transactional id back from the partition's new owner."""
        committed = await self._consumer.committed(tp)
        if committed is not None:
            try:
                await asyncio.wait_for(self._consumer.commit({tp: committed}), self._settings.publish_timeout_seconds)
            except TimeoutError as error:
                raise NoAnswer(f"no answer from the group coordinator for {tp}") from error
        self._fenced.discard(tp)

    async def _partitions_leaving(self, leaving: dict[Partition, PartitionWork]) -> None:
        # What was handled before the partitions move is written now, so the next owner starts after it.
        self._generation += 1
        for tp, work in sorted(leaving.items()):
            async with self._lock(tp):
                await self._write_all_handled(tp, work)

    async def on_revoked(self, revoked: set[Partition]) -> None:
        await super().on_revoked(revoked)
        self._generation += 1
        for tp in revoked:
            async with self._lock(tp):
                self._committed.pop(tp, None)
                self._outcomes.pop(tp, None)
                self._last_began.pop(tp, None)
                self._read_to.pop(tp, None)
                self._fenced.discard(tp)  # a new assignment is proof enough of membership
                self._rejoining.discard(tp)
                self._undeliverable.pop(tp, None)
        await self._stop_producers(revoked)

    async def _settle(self) -> None:
        self._generation += 1
        for tp, work in sorted(self._work.items()):
            async with self._lock(tp):
                await self._write_all_handled(tp, work)
        await self._stop_producers(set(self._producers))
        await self._transactional.close()

    async def _write_all_handled(self, tp: Partition, work: PartitionWork) -> None:
        """Write every handled prefix, `transaction_max_records` at a time, in place of the partition's writer
        (with the lock held: the writer is waiting for its interval or the lock, not in a transaction)."""
        writer = self._writers.pop(tp, None)
        if writer is not None:
            writer.cancel()
        self._batch_ready.pop(tp, None)
        while await self._write_handled(tp, work):
            pass

    async def _stop_producers(self, partitions: set[Partition]) -> None:
        # Together, not one after another: each may wait for its bound, and shutdown has one grace period.
        stopping = [(tp, self._producers.pop(tp)) for tp in partitions if tp in self._producers]
        await asyncio.gather(*(self._transactional.release(tp, producer) for tp, producer in stopping))

    async def _accept(self, tp: Partition, records: list[Record]) -> None:
        if tp in self._rejoining:
            return  # refused by the group coordinator: the rejoin it asked for assigns positions afresh
        if tp in self._producers and not self._stale(tp):
            # The common case, without waiting for the partition's open transaction: new records only queue.
            await self._accept_fresh(tp, records)
            return
        async with self._lock(tp):
            if self._stale(tp):
                return  # a rebalance or a restart moved the position while this waited for the lock
            if tp not in self._producers:
                # Fetched before the partition was prepared, maybe from a position the previous owner has moved
                # past since: prepare it, which seeks to where this group's work resumes, and let the fetcher
                # hand those records over again.
                await self._prepare_or_rewind(tp, records[0].offset)
                return
        await self._accept_fresh(tp, records)

    async def _accept_fresh(self, tp: Partition, records: list[Record]) -> None:
        # A batch fetched from a stale position repeats committed work: that part is done already.
        fresh = [record for record in records if record.offset >= self._committed.get(tp, 0)]
        if len(fresh) < len(records):
            log.info("%s[%d]: skipping %d records a previous owner committed", *tp, len(records) - len(fresh))
        if fresh:
            await super()._accept(tp, fresh)

    async def _prepare_or_rewind(self, tp: Partition, first: int) -> None:
        """Prepare `tp`; if the broker refuses for now, read again from `first`: the position is already past it,
        and a record handed over is never dropped."""
        self.positions_reset({tp})
        try:
            await self._prepare(tp, uncommitted_from=first)
        except ERRORS.not_in_group as error:
            # Not a member of the group's current generation any more: the consumer rejoins, and the partition is
            # revoked (and maybe assigned again, positions afresh). Until then nothing of it is handled.
            log.warning("%s[%d]: fenced, and the group has moved on (%r); rejoining", *tp, error)
            self._rejoining.add(tp)
        except NOT_READY as error:
            log.warning("%s[%d] not ready for transactions: %r; reading again from offset %d", *tp, error, first)
            self._seek(tp, first)

    async def _complete(self, tp: Partition, record: Record, outcome: Outcome) -> None:
        # Copying the whole context is cheap; sending under it takes a task of its own, so only when tracing.
        handled_in = contextvars.copy_context() if tracing.enabled() else correlation.current()
        outcome = self._deliverable(tp, record, outcome)
        outcomes = self._outcomes.setdefault(tp, {})
        outcomes[record.offset] = (record, outcome, handled_in)
        if len(outcomes) >= self._settings.transaction_max_records and (ready := self._batch_ready.get(tp)):
            ready.set()

    def _deliverable(self, tp: Partition, record: Record, outcome: Outcome) -> Outcome:
        """`outcome`, or, when writing it already aborted a transaction for good, the record's dead letter."""
        failed = self._undeliverable.get(tp, {}).get(record.offset)
        if failed is None:
            return outcome
        error, aborted = failed
        if aborted >= UNDELIVERABLE_ABORTS:
            # Neither its outcome nor its dead letter can be written: stop rather than abort transactions for ever.
            log.error("%s: nothing of it can be written (%r); the runner stops", where(record), error)
            raise error
        if isinstance(outcome, Failed):
            return outcome  # already its dead letter: tried once more
        log.error("%s: what it emitted cannot be written (%r); dead-lettered", where(record), error)
        metrics.consumed(record.topic, "dead_lettered")
        return Failed(error if isinstance(error, Exception) else RuntimeError(repr(error)), 1)

    def _full(self, tp: Partition, work: PartitionWork) -> bool:
        # Handled records wait in memory until their transaction: a partition whose transactions fall behind its
        # handlers stops fetching too.
        unwritten = len(self._outcomes.get(tp, ()))
        return super()._full(tp, work) or unwritten >= self._settings.transaction_max_records

    def _finished(self, tp: Partition, work: PartitionWork) -> None:
        writer = self._writers.get(tp)
        if writer is None or writer.done():
            self._writers[tp] = asyncio.create_task(self._write_while_handled(tp, work), name=f"transactions {tp}")

    async def _write_while_handled(self, tp: Partition, work: PartitionWork) -> None:
        """Write handled prefixes of `tp` until none is left, a transaction at most every interval: records
        finishing meanwhile go into the next one."""
        generation = self._generation
        batch_ready = self._batch_ready[tp] = asyncio.Event()
        interval = self._settings.transaction_interval_ms / 1000
        loop = asyncio.get_running_loop()
        try:
            while True:
                wait = self._last_began.get(tp, 0.0) + interval - loop.time()
                if wait > 0 and len(self._outcomes.get(tp, ())) < self._settings.transaction_max_records:
                    batch_ready.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(batch_ready.wait(), wait)
                async with self._lock(tp):
                    if self._generation != generation or self._work.get(tp) is not work:
                        return  # the partition moved or the runner stops: that path writes what was handled
                    self._last_began[tp] = loop.time()
                    if not await self._write_handled(tp, work):
                        if tp not in self._producers:
                            await self._restart(tp, work)
                        return
        except Exception as error:
            log.exception("%s[%d]: writing handled records failed; the runner stops", *tp)
            self._failure = error

    async def _write_handled(self, tp: Partition, work: PartitionWork) -> bool:
        """One transaction for the handled records below the partition's lowest unfinished one (the first
        `transaction_max_records` of them); false when there is nothing to write or it failed (then the partition
        has no producer). Called with the partition's lock held."""
        upto = work.commit_offset
        producer = self._producers.get(tp)
        outcomes = self._outcomes.get(tp, {})
        ready = sorted(offset for offset in outcomes if upto is not None and offset < upto)
        if producer is None or upto is None:
            return False
        if len(ready) > self._settings.transaction_max_records:
            ready = ready[: self._settings.transaction_max_records]
            upto = ready[-1] + 1  # every record below it is written: by this transaction or an earlier one
        elif work.drained and (read_to := self._read_to.get(tp)) is not None and read_to > upto:
            # Every record handed over is finished: commit past what the last poll skipped after them too (a
            # transactional input's commit marker), or the group's lag reads 1 for ever.
            upto = read_to
        if not ready and upto <= self._committed.get(tp, -1):
            return False
        deliveries: list[tuple[int, Delivery]] = []  # each write, with the offset it is the outcome of
        try:
            async with producer.transaction():
                for offset in ready:
                    record, outcome, handled_in = outcomes[offset]
                    try:
                        if isinstance(handled_in, contextvars.Context):
                            sending = send_outcome(producer, self._hooks, record, outcome)
                            sent = await asyncio.create_task(sending, context=handled_in)
                        else:
                            correlation.resume(handled_in)
                            sent = await send_outcome(producer, self._hooks, record, outcome)
                    except FENCED:
                        raise
                    except UNWRITABLE as error:
                        raise UndeliverableOutcome(offset, error) from error
                    deliveries.extend((offset, delivery) for delivery in sent)
                await self._delivered(deliveries)
                await producer.send_offsets_to_transaction({tp: upto}, self._consumer.group_metadata())
        except TRANSACTION_FAILED as error:
            # The outcome may be unknown (a commit can fail after the coordinator took it): the next producer of
            # this transactional id fences this one, which completes the transaction either way.
            self._note_failure(tp, error)
            log.warning("transaction for %s[%d] failed: %r; resuming from the committed offset", *tp, error)
            metrics.transaction("aborted")
            del self._producers[tp]
            await self._transactional.discard(tp, producer, (delivery for _, delivery in deliveries))
            return False
        metrics.transaction("committed")
        for offset in ready:
            del outcomes[offset]
        self._committed[tp] = upto
        if self._work.get(tp) is work:
            self._resume_if_room(tp, work)
        return True

    @staticmethod
    async def _delivered(deliveries: list[tuple[int, Delivery]]) -> None:
        """Wait for every write of the transaction; raise the first failure (a client may fail only the record's
        future on a produce error and commit the rest, as aiokafka does: Java's commitTransaction throws here)."""
        results = await asyncio.gather(*(delivery for _, delivery in deliveries), return_exceptions=True)
        failures = [(offset, result) for (offset, _), result in zip(deliveries, results, strict=True)]
        for offset, result in failures:
            if isinstance(result, RECORD_ERRORS):
                raise UndeliverableOutcome(offset, result) from result
            if isinstance(result, BaseException):
                raise result

    def _note_failure(self, tp: Partition, error: BaseException) -> None:
        """Remember why a transaction failed where it matters to the partition's next one."""
        if isinstance(error, FENCED):
            self._fenced.add(tp)
        elif isinstance(error, UndeliverableOutcome):
            undeliverable = self._undeliverable.setdefault(tp, {})
            _, aborted = undeliverable.get(error.offset, (error.error, 0))
            undeliverable[error.offset] = (error.error, aborted + 1)

    async def _polled(self) -> None:
        """Note where each partition was read to; one whose records are all finished but whose committed offset is
        behind that (a commit marker after its last record) gets an offsets-only transaction."""
        for tp, work in list(self._work.items()):
            if tp not in self._producers or self._stale(tp):
                continue
            try:
                position = await self._consumer.position(tp)
            except ERRORS.any:  # no longer assigned
                self._read_to.pop(tp, None)
                continue
            if self._stale(tp) or self._work.get(tp) is not work:
                continue  # moved while this asked: a batch polled before that is fetched again
            self._read_to[tp] = position
            if work.drained and position > self._committed.get(tp, -1):
                self._finished(tp, work)

    async def _restart(self, tp: Partition, work: PartitionWork) -> None:
        """After a failed transaction: drop what `tp` holds (cancelling its handlers) and read it again from
        whatever offset the transaction left committed."""
        self.positions_reset({tp})
        self._work.pop(tp, None)
        self._outcomes.pop(tp, None)
        self._read_to.pop(tp, None)
        tasks = self._handling.pop(tp, set())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if tp in self._consumer.assignment() and work.first_offset is not None:
            await self._prepare_or_rewind(tp, work.first_offset)
