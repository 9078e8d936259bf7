"""The consumer runner's common part: a loop that keeps polling while handlers run, so a slow handler never costs
the group membership; each partition's records handled up to `consumer_concurrency` at once in key order; bounded
retries, timeouts and dead letters. Subclasses decide when offsets are committed, and so which delivery guarantee
the service gives."""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from .. import correlation
from ..events.catalog import CONSUMED_TOPICS, Topic, topic_named
from ..events.models import Event
from ..events.serde import DeserializationError, EventSerde, RegistryUnavailableError
from ..observability import metrics, tracing
from ..settings import Settings
from .client import ERRORS
from .deadlines import Deadlines
from .outcomes import Failed, Handled, Outcome, encode
from .partition_work import PartitionWork
from .port import Consumer, Partition, Record

log = logging.getLogger(__name__)

UNANSWERED: tuple[type[Exception], ...] = (TimeoutError, *ERRORS.any)
"""A lookup that failed or got no answer in time."""

Handler = Callable[[Topic, Event], Awaitable[Sequence[Event]]]
"""Handles one event; returns the events it causes, which the runner publishes under its guarantee."""

__all__ = ["ConsumerRunner", "Failed", "Handled", "Handler", "Interrupted", "Outcome"]


class Interrupted(Exception):
    """Shutdown came while a message was being retried: it stays uncommitted for the next owner."""


class Rebalance:
    """Lets the runner settle its work before partitions move, and prepare before it reads new ones (a
    `port.RebalanceListener`)."""

    def __init__(self, runner: "ConsumerRunner") -> None:
        self._runner = runner

    async def on_partitions_revoked(self, revoked: set[Partition]) -> None:
        self._runner.positions_reset(revoked)
        await self._runner.on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[Partition]) -> None:
        self._runner.positions_reset(assigned)
        await self._runner.on_assigned(assigned)
        # The whole assignment: `assigned` is only what arrived when the client rebalances incrementally.
        metrics.assigned(self._runner.assignment())
        self._runner.joined.set()
        log.info("assigned %s", sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned))


class ConsumerRunner:
    """Polls, queues each partition's records in a `PartitionWork`, and handles them in tasks while it goes on
    polling; a partition with `consumer_max_records` records waiting is paused until it has room again.

    Subclasses say what a handled record writes (`_complete`), what a fetched batch needs first (`_accept`), and
    what to make durable when partitions move (`_partitions_leaving`) or the runner stops (`_settle`)."""

    _lanes_go_on = True
    """Whether a lane goes on with the next record itself; false when every record must go through `_launch`."""

    def __init__(self, consumer: Consumer, serde: EventSerde, handler: Handler, settings: Settings) -> None:
        self._consumer = consumer
        self._serde = serde
        self._handler = handler
        self._settings = settings
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._polling = False
        self._work: dict[Partition, PartitionWork] = {}
        self._handling: dict[Partition, set[asyncio.Task[None]]] = {}
        self._failure: BaseException | None = None
        # The partitions `_flow_control` paused: only a record of one of them can make a resume due.
        self._paused: set[Partition] = set()
        # Bumped whenever a partition's position is reset (a rebalance, a seek): a batch polled before that is
        # stale, and its records are fetched again from the new position.
        self._resets: dict[Partition, int] = {}
        self._resets_at_poll: dict[Partition, int] = {}
        self._deadlines = Deadlines(settings.handler_timeout_seconds)
        self.joined = asyncio.Event()

    async def start(self) -> None:
        self._consumer.subscribe([topic.name for topic in CONSUMED_TOPICS], listener=Rebalance(self))
        try:
            await self._consumer.start()
        except ERRORS.denied as denied:
            # A missing ACL: no restart can grant it. Stay alive and unready, say why, and keep asking.
            log.error("Kafka denies the consumer (%r); it retries until the ACL is granted", denied)
            self._task = asyncio.create_task(self._start_when_allowed(), name="consumer-runner")
            return
        self._task = asyncio.create_task(self._run(), name="consumer-runner")

    async def _start_when_allowed(self, backoff_seconds: float = 1.0) -> None:
        while not self._stopping.is_set():
            await asyncio.sleep(backoff_seconds)
            backoff_seconds = min(backoff_seconds * 2, 30.0)
            try:
                await self._consumer.start()
            except ERRORS.denied as denied:
                log.error("Kafka still denies the consumer (%r)", denied)
                continue
            await self._run()
            return

    async def stop(self) -> None:
        """Stop polling, give in-flight handlers the shutdown grace period, settle what finished, leave the group."""
        self._stopping.set()
        if self._task is not None:
            if self._polling:
                # Nothing in hand; and a poll can wait indefinitely for an assignment while the broker is away.
                self._task.cancel()
            await asyncio.wait([self._task], timeout=self._settings.shutdown_timeout_seconds)
            if not self._task.done():
                self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        # Handlers still running after the grace period are abandoned: their records stay uncommitted.
        await self._drain(set(self._handling), self._settings.shutdown_timeout_seconds)
        await self._settle()
        await self._consumer.stop()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def assignment(self) -> set[Partition]:
        return self._consumer.assignment()

    async def lag(self, timeout_seconds: float) -> dict[str, int]:
        """Records not yet handled in each assigned partition: the end of the partition minus the lowest record not
        finished (or the position, when all are finished: past a transaction's commit marker too).

        The end is the highwater of the last fetch; a paused partition is not fetched, so its end is asked of the
        broker instead (its lag is what keeps growing). Partitions without an end or a position within the
        timeout are left out."""
        lag: dict[str, int] = {}
        assigned = self._consumer.assignment()
        ends: dict[Partition, int] = {}
        if paused := self._consumer.paused() & assigned:
            with contextlib.suppress(*UNANSWERED):
                ends = await asyncio.wait_for(self._consumer.end_offsets(sorted(paused)), timeout_seconds)
        for tp in sorted(assigned):
            highwater: int | None = ends.get(tp) if tp in paused else self._consumer.highwater(tp)
            if highwater is None:
                continue
            work = self._work.get(tp)
            unfinished = work.commit_offset if work is not None and not work.drained else None
            if unfinished is not None:
                position: int = unfinished
            else:
                try:
                    position = await asyncio.wait_for(self._consumer.position(tp), timeout_seconds)
                except UNANSWERED:
                    continue
            lag[f"{tp.topic}[{tp.partition}]"] = max(highwater - position, 0)
        return lag

    async def on_assigned(self, assigned: set[Partition]) -> None:
        """Called before the first fetch from newly assigned partitions."""

    async def on_revoked(self, revoked: set[Partition]) -> None:
        """Before partitions move: wait a bounded time for their in-flight handlers, abandon the rest, then make
        what finished durable so the next owner starts after it."""
        leaving = {tp: self._work.pop(tp) for tp in revoked if tp in self._work}
        await self._drain(revoked, self._settings.consumer_revoke_wait_seconds)
        await self._partitions_leaving(leaving)

    async def _partitions_leaving(self, leaving: dict[Partition, PartitionWork]) -> None:
        """Called once the in-flight work of partitions about to move finished or was abandoned."""

    async def _settle(self) -> None:
        """Called once the loop stopped and in-flight work finished or was abandoned: make what finished durable."""

    def positions_reset(self, partitions: set[Partition]) -> None:
        for tp in partitions:
            self._resets[tp] = self._resets.get(tp, 0) + 1

    def _stale(self, tp: Partition) -> bool:
        """Whether `tp`'s position was reset since the batch in hand was polled: it will be fetched again."""
        return self._resets.get(tp, 0) != self._resets_at_poll.get(tp, 0)

    async def _accept(self, tp: Partition, records: list[Record]) -> None:
        """Queue fetched records for handling (no await before they are queued: the check stays true)."""
        if self._stale(tp):
            return
        work = self._work.get(tp)
        if work is None:
            work = self._work[tp] = PartitionWork(self._settings.consumer_concurrency)
        work.add(records)
        self._start_ready(tp)

    async def _complete(self, tp: Partition, record: Record, outcome: Outcome) -> None:
        """Write what handling `record` came to; the record counts as finished once this returns."""
        raise NotImplementedError

    def _finished(self, tp: Partition, work: PartitionWork) -> None:
        """Called each time a record of `tp` finished."""

    async def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                if self._failure is not None:
                    raise self._failure
                self._polling = True
                try:
                    batch = await self._consumer.getmany(timeout_ms=self._settings.consumer_poll_timeout_ms)
                except ERRORS.denied as denied:
                    # librdkafka learns of a missing ACL when it polls (aiokafka when it starts): stay alive and
                    # unready (never joined), say why, and keep asking.
                    log.error("Kafka denies the consumer (%r); it retries until the ACL is granted", denied)
                    await self._pause_while_denied()
                    continue
                finally:
                    self._polling = False
                # A poll hands over only records at the positions as they are now (a rebalance or a seek during
                # the poll discards what was fetched before it); later resets make this batch stale.
                self._resets_at_poll = dict(self._resets)
                assigned = self._consumer.assignment()
                for tp, records in batch.items():
                    # A partition that moved while this fetch was under way is read by its new owner.
                    if records and tp in assigned:
                        await self._accept(tp, records)
                self._flow_control()
                await self._polled()
        except Interrupted:
            return
        except Exception:
            log.exception("consumer runner stopped on an unexpected error")
            raise

    async def _pause_while_denied(self, seconds: float = 5.0) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _polled(self) -> None:
        """Called after each poll: a chance to commit what finished since the last one."""

    def _start_ready(self, tp: Partition) -> None:
        work = self._work.get(tp)
        if work is None or self._stopping.is_set():
            return
        if started := work.start():
            self._launch(tp, work, started)

    def _launch(self, tp: Partition, work: PartitionWork, records: list[Record]) -> None:
        """Start handling `records`, which `work` just handed out: each in a lane of its own, which goes on with
        the partition's next records as long as there are any it may start."""
        for record in records:
            self._spawn(tp, self._process(tp, work, record), f"handle {tp.topic}[{tp.partition}]")

    def _next_in_lane(self, tp: Partition, work: PartitionWork) -> Record | None:
        """The record the lane that just finished one goes on with; other records that may start now get lanes
        of their own. A task per record would cost more than handling a fast handler's record does."""
        if self._stopping.is_set():
            return None
        started = work.start()
        if not started:
            return None
        if not self._lanes_go_on:
            self._launch(tp, work, started)
            return None
        self._launch(tp, work, started[1:])
        return started[0]

    def _spawn(self, tp: Partition, work: Coroutine[Any, Any, None], name: str) -> None:
        """Run `work` as a task of `tp`'s, which a revoke or shutdown waits for (then cancels)."""
        task = asyncio.create_task(work, name=name)
        tasks = self._handling.setdefault(tp, set())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _process(self, tp: Partition, work: PartitionWork, record: Record) -> None:
        """A lane: handle `record`, then the partition's next records while there are any it may start."""
        next_record: Record | None = record
        while next_record is not None:
            record = next_record
            try:
                await self._process_record(tp, record)
            except Interrupted:
                return  # stopping: the record stays unfinished, so uncommitted
            except Exception as error:
                log.exception("%s: unexpected error; the runner stops", where(record))
                self._failure = error
                return
            work.finish(record.offset)
            if self._work.get(tp) is not work:
                return  # the partition moved, or its work was dropped to be read again
            self._finished(tp, work)
            next_record = self._next_in_lane(tp, work)
            self._resume_if_room(tp, work)

    async def _process_record(self, tp: Partition, record: Record) -> None:
        await self._complete(tp, record, await self._handle(record))

    def _release(self, tp: Partition, record: Record) -> None:
        """`record`'s writes are queued (in order, by one producer): the next records, of its key too, may start
        while it waits for their acknowledgement, as a batch's sends did. It is finished only after that."""
        work = self._work.get(tp)
        if work is not None:
            work.release(record.offset)
            self._start_ready(tp)

    def _full(self, tp: Partition, work: PartitionWork) -> bool:
        """Whether `tp` holds as much as it may: fetching it waits until it has room."""
        return work.waiting >= self._settings.consumer_max_records

    def _resume_if_room(self, tp: Partition, work: PartitionWork) -> None:
        if tp in self._paused and not self._full(tp, work):
            self._consumer.resume(tp)
            self._paused.discard(tp)

    def _flow_control(self) -> None:
        """Pause partitions with a full queue, so fetching goes on for the others (and for membership)."""
        assigned = self._consumer.assignment()
        full = {tp for tp, work in self._work.items() if self._full(tp, work)}
        paused = self._consumer.paused()
        if pause := (full & assigned) - paused:
            self._consumer.pause(*pause)
        if resume := (paused & assigned) - full:
            self._consumer.resume(*resume)
        self._paused = (paused | pause) - resume

    async def _drain(self, partitions: set[Partition], grace_seconds: float) -> None:
        """Wait up to `grace_seconds` for the handlers of `partitions` (those they start meanwhile too), then cancel
        those still running."""
        deadline = asyncio.get_running_loop().time() + grace_seconds
        while tasks := {task for tp in partitions for task in self._handling.get(tp, set())}:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                log.warning("abandoning %d in-flight record(s): they stay uncommitted", len(tasks))
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                break
            await asyncio.wait(tasks, timeout=remaining)
        for tp in partitions:
            self._handling.pop(tp, None)

    async def _handle(self, record: Record) -> Outcome:
        """Decode and handle one record, retrying a failing handler with exponential backoff."""
        decoded = await self._decode_record(record)
        if isinstance(decoded, Failed):
            return decoded
        return await self._call_handler(record, *decoded)

    async def _decode_record(self, record: Record) -> tuple[Topic, Event] | Failed:
        """The record's event, or dead-letter material: whatever its bytes and headers, a record that is not an
        event of its topic never stops the runner. Only a registry outage is waited out (the record is fine)."""
        topic = topic_named(record.topic)
        tracing.continue_trace(record)
        correlation.adopt(record.headers)  # the handler's logs and what it emits continue the record's work
        try:
            return topic, await self._decode(topic, record)
        except Interrupted:
            raise
        except Exception as poison:  # a DeserializationError, or a serde tripping over bytes it never expected
            log.error("%s is not a %s event; dead-lettered: %r", where(record), topic.name, poison)
            metrics.consumed(record.topic, "dead_lettered")
            return Failed(poison, 0)

    async def _call_handler(self, record: Record, topic: Topic, event: Event) -> Outcome:
        """The handler's result, each attempt bounded by `handler_timeout_seconds`; dead-letter material once
        `handler_max_attempts` attempts failed."""
        backoff = self._settings.handler_retry_backoff_seconds
        attempts = 0
        while True:
            attempts += 1
            try:
                return await self._deadlines.run(self._attempt(topic, event))
            except Exception as failure:  # a timeout too: the attempt is cancelled, then retried
                if attempts >= self._settings.handler_max_attempts:
                    log.error("%s dead-lettered after %d attempt(s): %r", where(record), attempts, failure)
                    metrics.consumed(record.topic, "dead_lettered")
                    return Failed(failure, attempts)
                if self._stopping.is_set():
                    raise Interrupted from failure
                log.warning("%s attempt %d failed: %r; retrying", where(record), attempts, failure)
                metrics.retried(record.topic)
                await asyncio.sleep(backoff)
                backoff *= 2

    async def _attempt(self, topic: Topic, event: Event) -> Handled:
        """Run the handler and encode what it emitted: an output that cannot be written (refused by the registry,
        too large, the registry away) fails the attempt, so it is retried, then dead-lettered with the input."""
        emitted = await self._handler(topic, event)
        return Handled(event, await encode(self._serde, event, emitted))

    async def _decode(self, topic: Topic, record: Record) -> Event:
        """Decode, waiting out a registry outage: the message is fine, so it must neither fail nor be skipped."""
        if record.value is None:
            raise DeserializationError(f"not a {topic.name} event: a null value (a tombstone)")
        backoff = self._settings.handler_retry_backoff_seconds
        while True:
            try:
                return await self._serde.deserialize(topic, record.value)
            except RegistryUnavailableError as outage:
                if self._stopping.is_set():
                    raise Interrupted from outage
                log.warning("%s waits for the schema registry: %r", where(record), outage)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)

    async def finished(self) -> None:
        """Wait until the runner's loop ends: after `stop`, or on an error it cannot handle."""
        if self._task is not None:
            await asyncio.wait([self._task])


def where(record: Record) -> str:
    return f"{record.topic}[{record.partition}]@{record.offset}"
