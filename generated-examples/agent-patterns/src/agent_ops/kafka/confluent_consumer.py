"""librdkafka's consumer as a `port.Consumer`, bridged into asyncio.

confluent-kafka serialises the calls on one consumer (a call waits while another thread's is under way), so one
thread of the consumer's own makes them all: polls, in short slices, and between slices whatever the loop asked
for (a commit, a seek, offsets). The rebalance callbacks librdkafka fires inside a poll run the port's (async)
listener on the event loop; meanwhile that thread serves what the listener asks of the consumer, so the listener
may commit, seek and ask for offsets as it likes. The port's synchronous calls (seek, pause, resume) are queued
for the thread, in order; what they change is answered at once (`position`, `paused`), and what librdkafka alone
knows (`highwater`, the group's metadata) is kept as of the last poll.

With a subscription the consumer runs the group protocol of KIP-848 (`group.protocol=consumer`): the broker owns
the session timeout, the heartbeat and the assignor, and a rebalance moves only the partitions that change hands
(incremental, as the port's listener allows)."""

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from .confluent_errors import Denied, raised
from .confluent_threads import Worker
from .port import GroupMetadata, Partition, RebalanceListener, Record

log = logging.getLogger(__name__)

SLICE_SECONDS = 0.05
"""The longest a poll blocks the consumer's thread at a time: what the loop asks for meanwhile waits this long."""


LEADER_WAIT_SECONDS = 40.0
"""How long a partition without a leader (a topic just created, a leader moving) is asked again for its offsets:
aiokafka's `request_timeout_ms`, which bounds the same wait there. An election on a busy cluster outlasts the round
trip's own bound."""

LEADER_MOVING = {
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.REPLICA_NOT_AVAILABLE,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError.OFFSET_NOT_AVAILABLE,
    KafkaError.FENCED_LEADER_EPOCH,
    KafkaError.UNKNOWN_LEADER_EPOCH,
    KafkaError.KAFKA_STORAGE_ERROR,
    KafkaError.REQUEST_TIMED_OUT,
    KafkaError._TRANSPORT,
}
"""The errors of a watermarks query that a leader in place ends. librdkafka answers them at once (it only refreshes
its metadata) and, outside its transactional API, never marks an error `retriable()`; so they are told by code. A
topic just created is one: its creation returns once the controller has it, and until the broker has created the
partition too (hundreds of milliseconds under load) it answers NOT_LEADER_FOR_PARTITION."""


MEMBERSHIP_CHECK_SECONDS = 1.0
"""How often a member with no assignment yet asks the group's coordinator whether it counts it as a member."""


class ConfluentRecord:
    """A consumed message with the port's attributes (librdkafka's has methods)."""

    __slots__ = ("headers", "key", "offset", "partition", "timestamp", "topic", "value")

    def __init__(self, message: Any) -> None:
        self.topic: str = message.topic()
        self.partition: int = message.partition()
        self.offset: int = message.offset()
        self.key: bytes | None = message.key()
        self.value: bytes | None = message.value()
        self.headers: list[tuple[str, bytes]] = message.headers() or []
        self.timestamp: int = message.timestamp()[1]


def native(partition: Partition, offset: int | None = None) -> TopicPartition:
    if offset is None:
        return TopicPartition(partition.topic, partition.partition)
    return TopicPartition(partition.topic, partition.partition, offset)


def ours(tp: TopicPartition) -> Partition:
    return Partition(tp.topic, tp.partition)


class ConfluentConsumer:
    """librdkafka's consumer as a `port.Consumer`. `config` is librdkafka's; the client is made by `start`, in the
    group protocol its use asks for: KIP-848's with a subscription, the classic one (only for its offsets) without.
    `connection` (the brokers and credentials alone) lets a subscribed member ask the group's coordinator whether
    it has joined, which librdkafka never says of a member given no partition (`_until_member`)."""

    def __init__(
        self,
        config: dict[str, Any],
        max_records: int,
        timeout_seconds: float,
        close_timeout_seconds: float,
        connection: Mapping[str, Any] | None = None,
    ) -> None:
        self._config = config
        self._connection = connection
        self._max_records = max_records
        self._timeout = timeout_seconds
        self._close_timeout = close_timeout_seconds
        self._in_group = "group.id" in config
        self._native: Consumer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._topics: list[str] = []
        self._listener: RebalanceListener | None = None
        self._thread = Worker(f"kafka-consumer-{config.get('client.id', '')}")
        self._polling: Future[None] | None = None  # a poll whose caller was cancelled before it returned
        # Held while the thread takes a message in and while the loop reads or changes what it depends on.
        self._lock = threading.Lock()
        self._batch: dict[Partition, list[Record]] | None = None
        self._assignment: set[Partition] = set()
        self._paused: set[Partition] = set()
        # Seeks queued for the thread, per partition: a message of one taken before they apply is stale.
        self._seeking: dict[Partition, int] = {}
        # Partitions seeked since, and where to, with librdkafka's position when the seek applied (None until then):
        # librdkafka's position moves only as messages (or transaction markers) are taken, not with a seek.
        self._sought: dict[Partition, tuple[int, int | None]] = {}
        # Where a partition's first fetch starts, once asked (a committed offset and watermarks, a round trip each
        # on the consumer's thread): it holds until a message of the partition is taken, or it moves or is sought.
        self._starts: dict[Partition, int] = {}
        self._highwaters: dict[Partition, int] = {}
        self._group_metadata: GroupMetadata | None = None
        # Whether the listener was told of an assignment (on the thread), and the task that waits for the first.
        self._told_assigned = False
        self._membership: asyncio.Task[None] | None = None

    @property
    def _client(self) -> Consumer:
        if self._native is None:
            raise RuntimeError("the consumer is not started")
        return self._native

    def _queue(self, call: Callable[..., Any], *args: Any) -> None:
        """`call` on the consumer's thread, after what was queued before; its failure logged."""
        self._thread.submit(call, *args).add_done_callback(_log_failure)

    async def _ask(self, call: Callable[..., Any], *args: Any) -> Any:
        """`call` on the consumer's thread; librdkafka's error raised as ours."""
        try:
            return await self._thread.run(call, *args)
        except KafkaException as error:
            raise raised(error) from None

    def subscribe(self, topics: list[str], listener: RebalanceListener) -> None:
        self._topics = list(topics)
        self._listener = listener
        if self._native is not None:
            self._queue(self._subscribe, self._native)

    def assign(self, partitions: list[Partition]) -> None:
        # Outside a group nothing is committed: start where `auto.offset.reset` says, without asking for offsets.
        start = None
        if not self._in_group:
            start = OFFSET_BEGINNING if self._config.get("auto.offset.reset") == "earliest" else OFFSET_END
        with self._lock:
            self._assignment = set(partitions)
            self._paused &= self._assignment
            self._sought.clear()
            self._starts.clear()
            if self._batch is not None:
                for tp in list(self._batch):
                    if tp not in self._assignment:
                        del self._batch[tp]
        self._queue(self._client.assign, [native(tp, start) for tp in partitions])

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        config = dict(self._config)
        if not self._in_group:
            # librdkafka wants a group id even to read partitions it assigns itself; this one is never joined.
            config["group.id"] = f"{config.get('client.id', 'reader')}.unjoined"
        elif self._topics:
            config["group.protocol"] = "consumer"
        try:
            self._native = Consumer(config)
        except KafkaException as error:
            raise raised(error) from None
        if self._topics:
            await self._ask(self._subscribe, self._native)
            if self._in_group and self._connection is not None:
                self._membership = asyncio.create_task(self._until_member(), name="kafka group membership")

    async def _until_member(self) -> None:
        """Tell the listener of an empty assignment once the group counts this member, unless an assignment came
        first. Under KIP-848 librdkafka tells none of an empty one (aiokafka's classic protocol does): a member
        the group gives no partition, one more than the partitions (replicas scaled past them, a rolling update's
        surge pod), would never hear that it joined, and never be ready."""
        admin = AdminClient(dict(self._connection or {}))
        group = str(self._config["group.id"])
        member = await self._ask(self._client.memberid)
        while not self._told_assigned and self._native is not None:
            try:
                (asked,) = admin.describe_consumer_groups([group], request_timeout=self._timeout).values()
                described = await asyncio.wait_for(asyncio.wrap_future(asked), self._timeout)
                if any(one.member_id == member for one in described.members):
                    self._queue(self._tell_member)
                    return
            except (KafkaException, TimeoutError) as error:  # the coordinator not there yet: asked again
                log.debug("group %s not described: %r", group, error)
            await asyncio.sleep(MEMBERSHIP_CHECK_SECONDS)

    def _tell_member(self) -> None:
        """On the thread: the listener hears that this member joined with nothing, unless it heard of partitions."""
        if not self._told_assigned:
            self._told_assigned = True
            self._tell("on_partitions_assigned", set(), even_none=True)

    def _subscribe(self, client: Consumer) -> None:
        # No on_lost: librdkafka then tells a lost assignment as a revoke, which the listener settles as one.
        client.subscribe(self._topics, on_assign=self._on_assign, on_revoke=self._on_revoke)

    async def stop(self) -> None:
        """Leave the group and close, bounded: while no broker answers, librdkafka's close can wait long for the
        group coordinator. The revoke it makes is not told to the listener (the runner settled already)."""
        client, self._native = self._native, None
        self._listener = None
        if self._membership is not None:
            self._membership.cancel()
        if client is None:
            return
        closing = self._thread.submit(client.close)  # after the poll under way, if any
        self._thread.stop()
        try:
            await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(closing)), self._close_timeout)
        except TimeoutError:
            log.warning("consumer did not close within %g s; left to close in the background", self._close_timeout)
        except (KafkaException, RuntimeError) as error:
            log.warning("consumer closed with an error: %r", error)

    async def getmany(self, *partitions: Partition, timeout_ms: int = 0) -> dict[Partition, list[Record]]:
        client = self._client
        others: set[Partition] = set()
        if partitions:
            # Only these partitions' records: the others are paused meanwhile (pausing drops what was prefetched,
            # which is fetched again from the position on resume), never read and dropped.
            others = self._assignment - set(partitions) - self._paused
            if others:
                self._queue(client.pause, [native(tp) for tp in others])
        try:
            if self._polling is None:
                self._polling = self._thread.submit(self._poll, client, timeout_ms / 1000)
            # Shielded: a caller cancelled mid-poll leaves the batch to the next poll, with what it moved past.
            polled = asyncio.wrap_future(self._polling)
            polled.add_done_callback(_retrieved)
            await asyncio.shield(polled)
        finally:
            if others and self._native is client:
                self._queue(client.resume, [native(tp) for tp in others])
        self._polling = None
        with self._lock:
            batch, self._batch = self._batch or {}, None
        return batch

    def _poll(self, client: Consumer, timeout_seconds: float) -> None:
        """On the thread: take messages into `_batch` until `max_records`, waiting up to the timeout for the first
        one, in slices, serving what the loop asks for between them."""
        with self._lock:
            if self._batch is None:
                self._batch = {}
            taken = sum(len(records) for records in self._batch.values())
        deadline = time.monotonic() + timeout_seconds
        while taken < self._max_records:
            left = deadline - time.monotonic()
            message = client.poll(0.0 if taken else max(min(left, SLICE_SECONDS), 0.0))
            if message is None:
                self._thread.serve_waiting()
                if self._native is not client:
                    return  # stopped: what was served may have closed it
                if taken or left <= SLICE_SECONDS:
                    break
                continue
            error = message.error()
            if error is not None:
                self._consumer_error(error)
                continue
            tp = Partition(message.topic(), message.partition())  # type: ignore[arg-type]
            with self._lock:
                if self._batch is None or tp not in self._assignment or self._seeking.get(tp):
                    continue  # revoked, handed over, or about to move: not at the position it will have
                self._batch.setdefault(tp, []).append(ConfluentRecord(message))
                self._sought.pop(tp, None)
                self._starts.pop(tp, None)
            taken += 1
        self._refresh(client)

    def _refresh(self, client: Consumer) -> None:
        """On the thread: keep what only librdkafka knows for the loop's synchronous questions."""
        highwaters: dict[Partition, int] = {}
        for tp in list(self._assignment):
            try:
                low_high = client.get_watermark_offsets(native(tp), cached=True)
            except KafkaException:
                continue
            if low_high is not None and low_high[1] >= 0:
                highwaters[tp] = int(low_high[1])
        self._highwaters = highwaters
        if self._in_group:
            with contextlib.suppress(KafkaException, RuntimeError):  # not in the group yet
                self._group_metadata = client.consumer_group_metadata()

    def _consumer_error(self, error: KafkaError) -> None:
        if error.code() in (KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.GROUP_AUTHORIZATION_FAILED):
            raise Denied(error)
        if error.fatal():
            raise raised(error)
        # librdkafka recovers from the others itself (a broker away, a topic not created yet): say so and go on.
        log.warning("consumer: %s", error.str())

    def _on_assign(self, client: Consumer, tps: list[TopicPartition]) -> None:
        """On the thread, inside a poll. Assigned before the listener is told, so that it can seek."""
        assigned = {ours(tp) for tp in tps}
        client.incremental_assign(tps)
        with self._lock:
            self._assignment |= assigned
        self._refresh(client)
        self._told_assigned = True
        self._tell("on_partitions_assigned", assigned)

    def _on_revoke(self, client: Consumer, tps: list[TopicPartition]) -> None:
        """On the thread, inside a poll or a close; librdkafka unassigns them once this returns."""
        revoked = {ours(tp) for tp in tps}
        self._refresh(client)
        self._tell("on_partitions_revoked", revoked)
        with self._lock:
            self._assignment -= revoked
            self._paused -= revoked
            for tp in revoked:
                self._sought.pop(tp, None)
                self._starts.pop(tp, None)
            if self._batch is not None:
                for tp in revoked:
                    self._batch.pop(tp, None)

    def _tell(self, event: str, partitions: set[Partition], even_none: bool = False) -> None:
        """Run the listener on the loop, serving what it asks of the consumer until it returns."""
        listener, loop = self._listener, self._loop
        if listener is None or loop is None or loop.is_closed() or not (partitions or even_none):
            return
        told = asyncio.run_coroutine_threadsafe(getattr(listener, event)(partitions), loop)
        while not told.done():
            self._thread.serve_waiting(0.01)
        try:
            told.result()
        except Exception:
            # As aiokafka does: the rebalance goes on; the listener's own failure is its to handle.
            log.exception("the rebalance listener failed (%s %s)", event, sorted(partitions))

    def assignment(self) -> set[Partition]:
        return set(self._assignment)

    def pause(self, *partitions: Partition) -> None:
        with self._lock:
            self._paused.update(partitions)
        self._queue(self._client.pause, [native(tp) for tp in partitions])

    def resume(self, *partitions: Partition) -> None:
        with self._lock:
            self._paused.difference_update(partitions)
        self._queue(self._client.resume, [native(tp) for tp in partitions])

    def paused(self) -> set[Partition]:
        return self._paused & self._assignment

    def seek(self, partition: Partition, offset: int) -> None:
        with self._lock:
            self._seeking[partition] = self._seeking.get(partition, 0) + 1
            self._sought[partition] = (offset, None)
            self._starts.pop(partition, None)
            if self._batch is not None:
                self._batch.pop(partition, None)
        self._queue(self._seek, self._client, partition, offset)

    def _seek(self, client: Consumer, partition: Partition, offset: int) -> None:
        """On the thread: what was taken of the partition before is stale from now on."""
        with self._lock:
            left = self._seeking.get(partition, 1) - 1
            if left:
                self._seeking[partition] = left
            else:
                self._seeking.pop(partition, None)
            if self._batch is not None:
                self._batch.pop(partition, None)
            client.seek(native(partition, offset))
            (before,) = client.position([native(partition)])
            sought = self._sought.get(partition)
            if sought is not None and sought == (offset, None):
                self._sought[partition] = (offset, before.offset)

    async def position(self, partition: Partition) -> int:
        client = self._client
        (tp,) = await self._ask(client.position, [native(partition)])  # after any seek queued before
        with self._lock:
            sought = self._sought.get(partition)
            if sought is not None:
                if sought[1] is None or tp.offset == sought[1]:
                    return sought[0]  # seeked, nothing taken since
                del self._sought[partition]  # moved on since (past transaction markers, say)
        if tp.error is not None:
            raise raised(tp.error)
        if tp.offset >= 0:
            return int(tp.offset)
        # Nothing taken yet: where the first fetch starts, asked once (readiness asks for every partition).
        with self._lock:
            start = self._starts.get(partition)
        if start is not None:
            return start
        committed = await self.committed(partition)
        if committed is not None:
            start = committed
        else:
            low, high = await self._watermarks(partition)
            start = low if self._config.get("auto.offset.reset") == "earliest" else high
        with self._lock:
            if partition in self._assignment and partition not in self._sought:
                self._starts[partition] = start
        return start

    async def committed(self, partition: Partition) -> int | None:
        if not self._in_group:
            return None
        # Bounded by the round trip's timeout: the consumer's thread waits meanwhile. In read_committed librdkafka
        # asks for stable offsets only, so an offset an open transaction holds times out here, and the caller
        # asks again later (the transaction's end, at most `transaction.timeout.ms` away, settles it).
        (tp,) = await self._ask(self._client.committed, [native(partition)], self._timeout)
        if tp.error is not None:
            raise raised(tp.error)
        return int(tp.offset) if tp.offset >= 0 else None

    def highwater(self, partition: Partition) -> int | None:
        return self._highwaters.get(partition)

    async def _watermarks(self, partition: Partition) -> tuple[int, int]:
        """The partition's first offset and its end, asked of its leader. In read_committed (every consumer of the
        service) librdkafka asks for the last stable offset as the end."""
        client, loop = self._client, asyncio.get_running_loop()
        deadline = loop.time() + max(self._timeout, LEADER_WAIT_SECONDS)
        while True:
            try:
                low_high = await self._thread.run(client.get_watermark_offsets, native(partition), self._timeout)
                break
            except KafkaException as error:
                # A leader that moved (or a topic just created): asked again, as aiokafka does, until the bound.
                if error.args[0].code() not in LEADER_MOVING or loop.time() >= deadline:
                    raise raised(error) from None
            await asyncio.sleep(0.1)
        if low_high is None:
            raise raised(KafkaError(KafkaError._TIMED_OUT, f"no offsets of {partition} within {self._timeout:g} s"))
        return int(low_high[0]), int(low_high[1])

    async def beginning_offsets(self, partitions: list[Partition]) -> dict[Partition, int]:
        return {tp: (await self._watermarks(tp))[0] for tp in partitions}

    async def end_offsets(self, partitions: list[Partition]) -> dict[Partition, int]:
        return {tp: (await self._watermarks(tp))[1] for tp in partitions}

    async def topics(self) -> set[str]:
        metadata = await self._ask(self._client.list_topics, None, self._timeout)
        return {name for name in metadata.topics if not name.startswith("__")}

    async def commit(self, offsets: Mapping[Partition, int]) -> None:
        """Synchronous on the broker: returns once the group coordinator stored the offsets."""
        if not offsets:
            return
        client = self._client
        natives = [native(tp, offset) for tp, offset in offsets.items()]
        try:
            # Bounded here: librdkafka's synchronous commit has no timeout of its own (it waits for a coordinator).
            committed = await asyncio.wait_for(
                self._ask(lambda: client.commit(offsets=natives, asynchronous=False)), self._timeout
            )
        except TimeoutError:
            raise raised(KafkaError(KafkaError._TIMED_OUT, f"no commit within {self._timeout:g} s")) from None
        for tp in committed or ():
            if tp.error is not None:
                raise raised(tp.error)

    def group_metadata(self) -> GroupMetadata:
        """The group with this member's id and epoch as of the last poll (KIP-447): a transaction of an older
        generation is fenced."""
        if self._group_metadata is None:
            raise raised(KafkaError(KafkaError._STATE, "not a member of the group yet"))
        return self._group_metadata


def _retrieved(done: "asyncio.Future[Any]") -> None:
    """A poll's failure is its caller's to raise; once the caller is gone (a stop), nobody's."""
    if not done.cancelled():
        done.exception()


def _log_failure(done: "Future[Any]") -> None:
    if not done.cancelled() and (error := done.exception()) is not None:
        log.warning("consumer: %r", error)
