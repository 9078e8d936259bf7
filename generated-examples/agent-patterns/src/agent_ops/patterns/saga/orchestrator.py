"""The saga orchestrator: consumes the commands topic, runs each step's handler, and commits every saga's new
state, its next command and the consumed offsets in one Kafka transaction per partition and batch.

Commands and states of one saga share a partition number (both topics have the same partition count, and the
orchestrator writes to the partition it read from), so the owner of a commands partition owns those sagas alone.
When it gets a partition it fences the partition's previous owner with the partition's transactional id, then
reads the state partition to its end: the latest state of every saga there, as last committed.

Now and then (and on taking a partition) it sweeps the partition's sagas: a saga finished longer than
SAGA_FINISHED_RETENTION_SECONDS ago is tombstoned from the compacted state topic, and a saga whose pending command
is older than the commands topic's retention (SAGA_COMMANDS_RETENTION_SECONDS) gets it issued again: its record may
be gone. A record on the commands topic that is not a command goes to the dead-letter topic, with why in its headers."""

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ... import correlation
from ...kafka.client import ERRORS, committed_reader, fenced, transactional_producer
from ...kafka.port import Partition, Record, TransactionalProducer
from ...kafka.producer import stop_producer
from ...kafka.reading import POLL_TIMEOUT_MS, read_to_end
from ...settings import Settings
from ..clients import send_dead_letter
from . import metrics, names
from .definition import STEPS, Steps
from .machine import (
    TERMINAL,
    Command,
    Failed,
    Outcome,
    SagaState,
    StepCall,
    StepSpec,
    Succeeded,
    advance,
    begin,
    taken,
)
from .settings import SagaSettings, get_saga_settings

log = logging.getLogger(__name__)

SWEEP_INTERVAL_SECONDS = 60.0
"""How often an owned partition's sagas are swept (tombstones, commands issued again) while it is idle."""


async def read_states(settings: Settings, partition: int) -> dict[str, SagaState]:
    """The latest committed state of every saga of one state partition."""
    reader = committed_reader(settings, from_earliest=True)
    await reader.start()
    try:
        tp = Partition(names.STATE_TOPIC, partition)
        reader.assign([tp])
        begin = (await reader.beginning_offsets([tp]))[tp]
        end = (await reader.end_offsets([tp]))[tp]
        states: dict[str, SagaState] = {}
        async for batch in read_to_end(reader, tp, begin, end):
            for record in batch:
                if record.key is None:
                    continue
                saga_id = record.key.decode("utf-8", "replace")
                if record.value is None:
                    states.pop(saga_id, None)  # a tombstone: the saga finished long ago and was deleted
                    continue
                try:
                    states[saga_id] = SagaState.from_bytes(record.value)
                except (ValueError, TypeError, KeyError) as error:
                    log.error("%s[%d]@%d is not a saga state, skipped: %r", *tp, record.offset, error)
        return states
    finally:
        await reader.stop()


@dataclass
class _Partition:
    producer: TransactionalProducer
    states: dict[str, SagaState]


@dataclass
class _Change:
    state: SagaState
    cause: Command
    records: list[tuple[str, bytes | None, bytes]] = field(default_factory=list)
    issues: bool = True
    """Whether the state's pending command is sent: not when the state only records that it was taken."""


def _taking(state: SagaState) -> _Change:
    """The change that records a saga's pending command as taken: its state, with the deadline, and nothing sent."""
    assert state.pending is not None
    return _Change(state, state.pending, issues=False)


class _Rebalance:
    def __init__(self, orchestrator: "SagaOrchestrator") -> None:
        self._orchestrator = orchestrator

    async def on_partitions_revoked(self, revoked: set[Partition]) -> None:
        await self._orchestrator.release(revoked)

    async def on_partitions_assigned(self, assigned: set[Partition]) -> None:
        self._orchestrator.assigned(assigned)
        log.info("orchestrating saga partitions %s", sorted(tp.partition for tp in assigned))


class SagaOrchestrator:
    def __init__(
        self,
        settings: Settings,
        steps: Steps,
        plan: tuple[StepSpec, ...] = STEPS,
        clock: Callable[[], float] = time.time,
        saga: SagaSettings | None = None,
    ) -> None:
        """`steps` holds the handlers; `plan` is the spec's steps (a test may shorten their timeouts); `clock` tells
        the epoch seconds deadlines are counted in."""
        self._settings = settings
        self._config = saga = saga or get_saga_settings()
        self._clock = clock
        self._steps = steps
        self._plan = plan
        self._by_name = {step.name: step for step in plan}
        self._consumer = committed_reader(
            settings,
            group_id=names.GROUP,
            from_earliest=True,
            client_id=f"{settings.kafka_client_id}-saga",
            max_records=saga.max_records,
        )
        self._owned: dict[Partition, _Partition] = {}
        # The partitions the group gave it, none from a revocation until the next assignment: the consumer's own
        # assignment() still lists the revoked ones meanwhile, which must not be taken again as they are released.
        self._assigned: set[Partition] = set()
        self._gate = asyncio.Semaphore(saga.concurrency)
        self._busy: dict[Partition, asyncio.Task[None]] = {}
        self._swept: dict[Partition, float] = {}
        self._failure: BaseException | None = None
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._consumer.subscribe([names.COMMANDS_TOPIC], listener=_Rebalance(self))
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name="saga-orchestrator")

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def finished(self) -> None:
        """Returns (or raises) when the orchestrator stopped on its own."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.release(set(self._owned) | set(self._busy))
        await self._consumer.stop()

    def assigned(self, partitions: set[Partition]) -> None:
        """The group gave it `partitions`: each is taken (fenced, loaded) before its first batch."""
        self._assigned = set(partitions)

    async def release(self, partitions: set[Partition]) -> None:
        """Give partitions up: their batches in hand are cancelled (a transaction cut short aborts, so their commands
        come again to the next owner), then their producers closed."""
        self._assigned -= partitions
        cancelled = [self._busy.pop(tp) for tp in partitions if tp in self._busy]
        for task in cancelled:
            task.cancel()
        await asyncio.gather(*cancelled, return_exceptions=True)
        for tp in partitions:
            self._swept.pop(tp, None)
            owned = self._owned.pop(tp, None)
            if owned is not None:
                await stop_producer(owned.producer, self._settings.shutdown_timeout_seconds)

    async def _run(self) -> None:
        """Poll, and hand each partition's batch to a task of its own, the partition paused until it is done: a slow
        step holds back the sagas of its partition only."""
        while not self._stopping.is_set():
            if self._failure is not None:
                raise self._failure
            batch = await self._consumer.getmany(timeout_ms=POLL_TIMEOUT_MS)
            for tp, records in batch.items():
                if tp in self._busy or tp not in self._assigned:
                    continue
                # Past the last record handed over, and past the commit marker of the transaction that wrote it:
                # committing this position, not the last offset + 1, leaves the group no lag of 1 at rest.
                read_to = await self._consumer.position(tp)
                if tp in self._assigned:  # not revoked meanwhile
                    self._in_turn(tp, self._partition_batch(tp, records, read_to))
            now = asyncio.get_running_loop().time()
            for tp in list(self._assigned):
                if tp in self._busy:
                    continue
                if tp not in self._owned:
                    # Taken before any command comes: its sagas are swept too, whether or not one is under way.
                    self._in_turn(tp, self._take(tp))
                elif now - self._swept.get(tp, now) >= SWEEP_INTERVAL_SECONDS:
                    self._in_turn(tp, self._sweep(tp))

    def _in_turn(self, tp: Partition, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` as the partition's one task at a time, the partition paused until it is done."""
        self._consumer.pause(tp)
        task = asyncio.create_task(work, name=f"saga-{tp.partition}")
        self._busy[tp] = task
        task.add_done_callback(functools.partial(self._batch_done, tp))

    def _batch_done(self, tp: Partition, task: "asyncio.Task[None]") -> None:
        if self._busy.get(tp) is task:
            del self._busy[tp]
            if tp in self._consumer.assignment():
                self._consumer.resume(tp)
        if not task.cancelled() and task.exception() is not None:
            self._failure = task.exception()

    async def _partition_batch(self, tp: Partition, records: list[Record], read_to: int) -> None:
        if tp not in self._owned:
            await self._take(tp)  # moves the position: these records come again
            return
        await self._process(tp, records, read_to)

    async def _take(self, tp: Partition) -> None:
        await self._prepare(tp)
        await self._sweep(tp)

    async def _prepare(self, tp: Partition) -> None:
        """Fence the partition's previous owner, then load its sagas and resume from the committed offset."""
        producer = transactional_producer(self._settings, f"{self._config.transactional_id_prefix}{tp.partition}")
        await fenced(producer, self._settings.shutdown_timeout_seconds)
        try:  # also when stop() cancels us mid-way: a started producer is always stopped
            states = await read_states(self._settings, tp.partition)
            committed = await self._consumer.committed(tp)
            if committed is None:
                committed = (await self._consumer.beginning_offsets([tp]))[tp]
            self._consumer.seek(tp, committed)  # an offset, not seek_to_beginning(), whose reset may come too late
        except BaseException:
            await stop_producer(producer, self._settings.shutdown_timeout_seconds)
            raise
        self._owned[tp] = _Partition(producer, states)
        waiting = sum(1 for state in states.values() if state.status not in TERMINAL)
        log.info("saga partition %d: %d sagas, %d under way; resuming", tp.partition, len(states), waiting)

    async def _process(self, tp: Partition, records: list[Record], read_to: int) -> None:
        owned = self._owned[tp]
        commands: dict[str, list[tuple[Command, Record]]] = {}
        unreadable: list[tuple[Record, Exception]] = []
        for record in records:
            try:
                command = Command.from_bytes(record.value)
            except Exception as error:  # whatever the bytes: dead-lettered, never a stop
                log.error("%s[%d]@%d is not a saga command; dead-lettered: %r", *tp, record.offset, error)
                unreadable.append((record, error))
                continue
            commands.setdefault(command.saga_id, []).append((command, record))
        # Each saga's step time counts from now, committed before any handler runs: not from when its command was
        # issued (it may have waited behind a backlog), and only once (a restart mid-step gets what is left).
        now = self._clock()
        starting = [
            taken(state, self._plan, now, self._backoff(state.pending))
            for saga_id, queued in commands.items()
            if (state := owned.states.get(saga_id)) is not None
            and state.pending is not None
            and state.pending.deadline is None
            and any(state.expects(command) for command, _ in queued)
        ]
        if starting and not await self._commit(tp, records[0].offset, [_taking(state) for state in starting]):
            return
        changes = await asyncio.gather(
            *(self._saga(owned.states.get(saga_id), queued) for saga_id, queued in commands.items())
        )
        changed = [change for change in changes if change]
        await self._commit(tp, records[0].offset, changed, unreadable, read_to)

    def _backoff(self, command: Command | None) -> float:
        """The pause before a compensation is tried again, doubling with each attempt."""
        if command is None or command.attempt <= 1:
            return 0.0
        return float(self._config.retry_backoff_seconds * 2 ** (command.attempt - 2))

    async def _commit(
        self,
        tp: Partition,
        first: int,
        changed: list[_Change],
        unreadable: Sequence[tuple[Record, Exception]] = (),
        read_to: int | None = None,
    ) -> bool:
        """Commit the sagas' new states (their commands and records, the dead letters, the position `read_to` when
        given) in one transaction; whether it committed. When it did not, the partition starts over from what is
        committed, at offset `first` of the batch."""
        owned = self._owned[tp]
        producer = owned.producer
        try:
            async with producer.transaction():
                sent = [await send_dead_letter(producer, names.DEAD_LETTER_TOPIC, *bad) for bad in unreadable]
                for change in changed:
                    sent.extend(await self._write(producer, tp.partition, change))
                # aiokafka commits a transaction whose sends failed: only the futures tell. Any failure aborts.
                await asyncio.gather(*sent)
                if read_to is not None:
                    await producer.send_offsets_to_transaction({tp: read_to}, self._consumer.group_metadata())
        except ERRORS.any as error:
            # Aborted, or its outcome unknown: fence and start over from what is committed.
            metrics.saga_transaction(committed=False)
            log.warning("committing sagas of %s[%d] failed: %r; resuming from the committed state", *tp, error)
            self._owned.pop(tp)
            await stop_producer(producer, self._settings.shutdown_timeout_seconds)
            self._consumer.seek(tp, first)
            return False
        metrics.saga_transaction(committed=True)
        for change in changed:
            before = owned.states.get(change.state.saga_id)
            if change.state.status in TERMINAL and (before is None or before.status not in TERMINAL):
                metrics.saga_finished(change.state.status)
            owned.states[change.state.saga_id] = change.state
        return True

    async def _write(
        self, producer: TransactionalProducer, partition: int, change: _Change
    ) -> list["asyncio.Future[Any]"]:
        """The saga's new state, its next command and its step's records, all caused by the command just handled;
        their delivery futures."""
        state, cause = change.state, change.cause.command_id
        key = state.saga_id.encode()
        correlation.begin(state.correlation_id)
        headers = [("event-type", b"SagaState"), *correlation.outgoing(cause, cause)]
        sent = [await producer.send(names.STATE_TOPIC, state.to_bytes(), key=key, partition=partition, headers=headers)]
        if state.pending is not None and change.issues:
            command_id = state.pending.command_id
            headers = [
                ("event-type", b"SagaCommand"),
                ("event-id", command_id.encode()),
                *correlation.outgoing(command_id, cause),
            ]
            sent.append(
                await producer.send(
                    names.COMMANDS_TOPIC, state.pending.to_bytes(), key=key, partition=partition, headers=headers
                )
            )
        for topic, record_key, value in change.records:
            sent.append(await producer.send(topic, value, key=record_key, headers=correlation.outgoing(cause, cause)))
        return sent

    async def _sweep(self, tp: Partition) -> None:
        """Tombstone the partition's sagas finished longer than the retention ago, and issue again the pending
        command of those that waited longer than the commands topic keeps a record: nothing else would run it."""
        owned = self._owned.get(tp)
        if owned is None:
            return
        self._swept[tp] = asyncio.get_running_loop().time()
        now = self._clock()
        finished_before = now - self._config.finished_retention_seconds
        issued_before = now - self._config.commands_retention_seconds
        expired = [
            saga_id
            for saga_id, state in owned.states.items()
            if state.status in TERMINAL and state.updated_at <= finished_before
        ]
        lost = [  # issued as new: its step's time counts again from when it is taken
            replace(state, pending=replace(state.pending, deadline=None), updated_at=now)
            for state in owned.states.values()
            if state.status not in TERMINAL and state.pending is not None and state.updated_at <= issued_before
        ]
        if not expired and not lost:
            return
        producer = owned.producer
        try:
            async with producer.transaction():
                sent = [
                    await producer.send(names.STATE_TOPIC, None, key=saga_id.encode(), partition=tp.partition)
                    for saga_id in expired
                ]
                for state in lost:
                    assert state.pending is not None
                    log.warning(
                        "saga %s: its pending %s is older than the commands' retention; issued again",
                        state.saga_id,
                        state.pending.step,
                    )
                    sent.extend(await self._write(producer, tp.partition, _Change(state, state.pending)))
                await asyncio.gather(*sent)
        except ERRORS.any as error:
            # The producer is fenced or failing: the next batch's transaction finds out and starts over.
            log.warning("sweeping sagas of %s[%d] failed: %r; tried again later", *tp, error)
            return
        for saga_id in expired:
            owned.states.pop(saga_id, None)
        for state in lost:
            owned.states[state.saga_id] = state
        log.info(
            "saga partition %d: %d finished sagas tombstoned, %d commands issued again",
            tp.partition,
            len(expired),
            len(lost),
        )

    async def _saga(self, state: SagaState | None, queued: list[tuple[Command, Record]]) -> _Change | None:
        """Apply one saga's commands of the batch in order; its change, or None when all were repeats."""
        change: _Change | None = None
        for command, record in queued:
            correlation.adopt(record.headers)
            now = self._clock()
            if command.action == "start":
                if state is not None:
                    log.info("saga %s exists already; start ignored", command.saga_id)
                    continue
                state = begin(command, self._plan, now, correlation.correlation_id())
                change = _Change(state, command)
                continue
            if state is None or not state.expects(command):
                log.info("saga %s: %s %s is a repeat; skipped", command.saga_id, command.action, command.step)
                continue
            call = StepCall(
                state.saga_id,
                command.step,
                self._handler_name(command),
                command.action,
                command.attempt,
                dict(state.input),
                dict(state.results),
            )
            assert state.pending is not None, "a saga that expects a command has one pending"
            async with self._gate:
                outcome = await self._call(call, state.pending)
            state = advance(state, self._plan, outcome, self._clock(), self._config.compensation_max_attempts)
            # A failed step's records are dropped with it: only a completed step has effects on Kafka.
            change = _Change(state, command, call.records if isinstance(outcome, Succeeded) else [])
            if isinstance(outcome, Failed):
                log.warning("saga %s: %s failed: %s", state.saga_id, call.handler, outcome.error)
        return change

    def _handler_name(self, command: Command) -> str:
        step = self._by_name[command.step]
        if command.action == "compensate":
            assert step.compensation is not None, "only a step with a compensation is compensated"
            return step.compensation
        return step.name

    async def _call(self, call: StepCall, command: Command) -> Outcome:
        """Run the handler of `command` (the saga's pending one, as taken: with its deadline)."""
        await asyncio.sleep(self._backoff(command))
        left = (command.deadline or float("inf")) - self._clock()
        timeout = self._by_name[command.step].timeout_seconds
        handler = getattr(self._steps, call.handler)
        try:
            if left <= 0:
                raise TimeoutError
            async with asyncio.timeout(left):
                result = await handler(call)
        except TimeoutError:
            # Cut short: what the handler did so far may have taken effect, so a step is compensated too.
            return Failed(f"{call.handler} timed out after {timeout:g} s", timed_out=command.action == "run")
        except Exception as error:
            return Failed(f"{call.handler} raised {error!r}")
        return Succeeded(result)
