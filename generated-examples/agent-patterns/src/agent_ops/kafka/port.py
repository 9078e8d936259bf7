"""What the service asks of a Kafka client: the types and operations its runner, dead letters and patterns use,
in terms of no client library. An adapter module (aiokafka_client.py) gives them one library's meaning;
client.py says which adapter this service runs on. Nothing here imports a client library.

The shapes follow what both aiokafka and librdkafka can give without a copy per record: a record is read through
attributes (aiokafka's records have them; a librdkafka adapter makes one small object per message), a partition is
our own value type (librdkafka's is not hashable by value), a rebalance tells which partitions move (all of them
under aiokafka's eager protocol; only those that move under the cooperative one), and exactly-once gets its
producers from a `TransactionalProducers`, which decides how many there are (one per input partition under
aiokafka, which has no KIP-447; one per process under librdkafka, fenced by the group's generation)."""

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, NamedTuple, Protocol


class Partition(NamedTuple):
    topic: str
    partition: int


class Record(Protocol):
    """A consumed record. Header values are bytes as Kafka's clients type them (Kafka itself allows a null one)."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...

    @property
    def key(self) -> bytes | None: ...

    @property
    def value(self) -> bytes | None: ...

    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...

    @property
    def timestamp(self) -> int: ...


class Delivered(Protocol):
    """Where an acknowledged record was written."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...


Delivery = asyncio.Future[Delivered]
"""A sent record's acknowledgement: resolves once the broker has it, fails when it cannot be written."""


class GroupMetadata(Protocol):
    """The consumer group as a transaction's offsets must name it (KIP-447: with its generation, which fences a
    member the group has moved on from). Opaque: only the adapter that made it reads it."""


class RebalanceListener(Protocol):
    """Told before partitions move away and after partitions arrive. A client may tell incrementally (only the
    partitions that move) or eagerly (all of them, then the whole new assignment): the listener must not care."""

    async def on_partitions_revoked(self, revoked: set[Partition]) -> None: ...

    async def on_partitions_assigned(self, assigned: set[Partition]) -> None: ...


class Consumer(Protocol):
    """A consumer in a group (or, without a group, reading partitions it assigns itself)."""

    def subscribe(self, topics: list[str], listener: RebalanceListener) -> None: ...

    def assign(self, partitions: list[Partition]) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None:
        """Leave the group and close, also while the broker is away."""

    async def getmany(self, *partitions: Partition, timeout_ms: int = 0) -> Mapping[Partition, list[Record]]:
        """Poll a batch: records fetched since the last poll, waiting up to `timeout_ms` for some; only of
        `partitions` when given. Only records at the partitions' positions as they are when it returns (a seek or
        a rebalance during the poll discards what was fetched before it). The rebalance listener is called during
        a poll or between two, never while a batch is being handed over."""

    def assignment(self) -> set[Partition]: ...

    def pause(self, *partitions: Partition) -> None: ...

    def resume(self, *partitions: Partition) -> None: ...

    def paused(self) -> set[Partition]: ...

    def seek(self, partition: Partition, offset: int) -> None: ...

    async def position(self, partition: Partition) -> int:
        """The offset of the next record to fetch (past a transaction's commit marker too)."""

    async def committed(self, partition: Partition) -> int | None: ...

    def highwater(self, partition: Partition) -> int | None:
        """The partition's end as the last fetch saw it; none before a fetch."""

    async def beginning_offsets(self, partitions: list[Partition]) -> dict[Partition, int]:
        """The partitions' first offsets, asked of the broker."""

    async def end_offsets(self, partitions: list[Partition]) -> dict[Partition, int]:
        """The partitions' ends, asked of the broker."""

    async def topics(self) -> set[str]:
        """The topics the cluster has, asked of the broker."""

    async def commit(self, offsets: Mapping[Partition, int]) -> None: ...

    def group_metadata(self) -> GroupMetadata:
        """What a transaction's `send_offsets_to_transaction` needs of this consumer's group."""


class Producer(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None:
        """Flush and close."""

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Sequence[tuple[str, bytes | None]] | None = None,
    ) -> Delivery:
        """Queue a record (waiting only while the client's buffer is full); returns its delivery."""

    async def flush(self) -> None:
        """Wait until every record queued so far is delivered or failed."""


class TransactionalProducer(Producer, Protocol):
    async def begin_transaction(self) -> None: ...

    async def commit_transaction(self) -> None: ...

    async def abort_transaction(self) -> None: ...

    def transaction(self) -> AbstractAsyncContextManager[Any]:
        """Begin a transaction; commit it when the block ends, abort it when the block raises (unless the producer
        can no longer abort: then only the error goes on, and the producer must be discarded)."""

    async def send_offsets_to_transaction(self, offsets: Mapping[Partition, int], group: GroupMetadata) -> None:
        """Commit the group's `offsets` with the open transaction."""


class TransactionalProducers(Protocol):
    """Where exactly-once gets the producer that writes a partition's transactions. The runner holds one for
    each partition it owns, which may be the same producer for all of them: transactions on one producer then
    run one at a time, which `TransactionalProducer.transaction` sees to."""

    async def acquire(self, partition: Partition) -> TransactionalProducer:
        """A producer ready for `partition`'s transactions, every earlier writer of them fenced (and their open
        transaction completed): whatever was committed on `partition` is final once this returns."""

    async def release(self, partition: Partition, producer: TransactionalProducer) -> None:
        """`partition` moves away or the runner stops: `producer` no longer writes for it."""

    async def discard(
        self, partition: Partition, producer: TransactionalProducer, deliveries: Iterable[Delivery]
    ) -> None:
        """A transaction of `partition`'s on `producer` failed (its outcome maybe unknown): make sure it is
        aborted or fenced, so it never commits later; `deliveries` are its writes, whose failures nobody
        awaits any more. The partition `acquire`s a producer again before its next transaction."""

    async def close(self) -> None:
        """Stop whatever producer is still open (after the partitions' `release`)."""


class ClientErrors(NamedTuple):
    """The errors of a client, by what the runner does about them."""

    any: tuple[type[Exception], ...]
    """Any error of the client: a request failed, a partition is no longer assigned."""
    denied: tuple[type[Exception], ...]
    """The consumer's group or topics are not allowed (a missing ACL): no restart grants them."""
    not_in_group: tuple[type[Exception], ...]
    """A commit refused because the group has moved on without this member."""
    fenced: tuple[type[Exception], ...]
    """A transactional producer fenced by a newer one, or its transaction aborted by the coordinator."""
    record_rejected: tuple[type[Exception], ...]
    """One record's write refused for good (too large, corrupt, not allowed): no retry writes it."""
