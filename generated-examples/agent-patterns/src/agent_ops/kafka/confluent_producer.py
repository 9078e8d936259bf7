"""librdkafka's producer as a `port.Producer` and a `port.TransactionalProducer`, bridged into asyncio.

A send queues the record from the event loop (librdkafka's produce does not block) and returns an asyncio future.
librdkafka reports deliveries from its poll, which a thread of the producer's own calls all the time: the reports
of one poll are resolved on the loop together, with one call into it, not one per record. Blocking calls (flush,
the transactions' round trips) run on another thread of the producer's."""

import asyncio
import contextlib
import functools
import logging
import threading
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from .confluent_errors import ClientError, raised, raised_on_write
from .confluent_threads import Worker
from .port import Delivery, GroupMetadata, Partition

log = logging.getLogger(__name__)

POLL_SECONDS = 0.1
"""How long the polling thread waits for a delivery report at a time: librdkafka wakes it as one arrives, so this
only bounds how late it sees a stop."""


PURGED = {KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT}


class Written(NamedTuple):
    """Where an acknowledged record was written (a `port.Delivered`)."""

    topic: str
    partition: int
    offset: int


class ConfluentProducer:
    """librdkafka's producer of `config` (librdkafka's properties: connection and tuning) as a `port.Producer`."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._config = config
        self._native: Producer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reports: list[tuple[asyncio.Future[Any], KafkaError | None, Written | None]] = []
        self._reports_lock = threading.Lock()
        self._polling = False
        self._poller: threading.Thread | None = None
        self._calls = Worker(f"kafka-producer-{config.get('client.id', '')}")
        self._room = asyncio.Event()
        self._admin: AdminClient | None = None
        self.broken: ClientError | None = None
        """Set when the producer can no longer be used (a fatal error) and must be replaced."""

    @property
    def config(self) -> dict[str, Any]:
        """librdkafka's properties it was made with."""
        return dict(self._config)

    def admin(self) -> AdminClient:
        """An admin client with the producer's connection, for round trips a producer has no call for (a readiness
        probe's); made once."""
        if self._admin is None:
            connection = {name: value for name, value in self._config.items() if name != "transactional.id"}
            self._admin = AdminClient(connection)
        return self._admin

    @property
    def client(self) -> Producer:
        """librdkafka's producer, for what the port does not say (metadata, a readiness round trip)."""
        if self._native is None:
            raise RuntimeError("the producer is not started")
        return self._native

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            self._native = Producer(self._config | {"error_cb": self._on_error})
        except KafkaException as error:
            raise raised(error) from None
        self._polling = True
        self._poller = threading.Thread(
            target=self._poll, args=(self._native,), name=f"kafka-deliveries-{self._config.get('client.id', '')}"
        )
        self._poller.daemon = True
        self._poller.start()

    def _poll(self, client: Producer) -> None:
        """The polling thread: serve delivery reports until stopped."""
        purged = False
        while self._polling:
            try:
                client.poll(POLL_SECONDS)
            except KafkaException as error:  # a fatal error, raised by the poll that reports it
                self._on_error(error.args[0])
            if self.broken is not None and not purged:
                # librdkafka leaves a failed producer's records queued: fail them, so no delivery waits for ever.
                client.purge(blocking=False)
                purged = True
            self._dispatch()

    def _on_error(self, error: KafkaError) -> None:
        """librdkafka's error callback, from a poll: a fatal error ends the producer."""
        if error.fatal():
            log.error("producer failed: %s", error.str())
            self.broken = self.broken or raised(error)
        else:
            log.debug("producer: %s", error.str())  # librdkafka recovers, and logs it itself

    def _delivered(self, future: "asyncio.Future[Any]", error: KafkaError | None, message: Any) -> None:
        """librdkafka's delivery report, on whichever thread polled (ours, or one flushing or committing)."""
        written = None if error is not None else Written(message.topic(), message.partition(), message.offset())
        with self._reports_lock:
            self._reports.append((future, error, written))

    def _dispatch(self) -> None:
        """Hand the reports so far to the loop, in one call; under the lock, so that batches reach the loop in the
        order they were taken (a flush's end comes after the deliveries it waited for)."""
        with self._reports_lock:
            if not self._reports or self._loop is None:
                return
            reports, self._reports = self._reports, []
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits for these any more
                self._loop.call_soon_threadsafe(self._resolve, reports)

    def _resolve(self, reports: list[tuple["asyncio.Future[Any]", KafkaError | None, Written | None]]) -> None:
        for future, error, written in reports:
            if future.done():
                continue  # cancelled: its caller gave up waiting
            if error is None:
                future.set_result(written)
            elif self.broken is not None and error.code() in PURGED:
                future.set_exception(self.broken)  # why it was purged
            else:
                future.set_exception(raised_on_write(error))
        self._room.set()

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Sequence[tuple[str, bytes | None]] | None = None,
    ) -> Delivery:
        client, loop = self.client, self._loop
        assert loop is not None
        future: Delivery = loop.create_future()
        options: dict[str, Any] = {"on_delivery": functools.partial(self._delivered, future)}
        if partition is not None:
            options["partition"] = partition
        if timestamp_ms is not None:
            options["timestamp"] = timestamp_ms
        if headers:
            options["headers"] = list(headers)
        while True:
            try:
                client.produce(topic, value, key, **options)
                return future
            except BufferError:
                # librdkafka's queue is full: wait for deliveries to make room, the loop free meanwhile.
                self._room.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._room.wait(), POLL_SECONDS)
            except KafkaException as error:
                raise raised_on_write(error.args[0]) from None

    async def flush(self) -> None:
        client = self.client
        # A round at a time: a cancelled flush stops within one.
        while await self._calls.run(self._flush, client, 1.0):
            pass

    def _flush(self, client: Producer, timeout_seconds: float) -> int:
        left = client.flush(timeout_seconds)
        self._dispatch()
        return left

    async def stop(self) -> None:
        """Flush and close. A bound on the flush is the caller's (`stop_producer`): when it gives up, what is
        still queued fails."""
        if self._native is None:
            return
        try:
            await self.flush()
        finally:
            self._close()

    def _close(self) -> None:
        client, self._native = self._native, None
        if client is None:
            return
        self._polling = False
        self._calls.stop()
        # What no broker took fails now (librdkafka would retry it until its delivery timeout).
        client.purge()
        client.flush(0)
        self._dispatch()


class ConfluentTransactionalProducer(ConfluentProducer):
    """librdkafka's transactional producer (`config` names its `transactional.id`) as a
    `port.TransactionalProducer`. `start` initialises its transactions, which fences every earlier producer of the
    id and completes its open transaction. Transactions on it run one at a time (`transaction` waits its turn).

    librdkafka sorts a transaction's errors: abortable (abort, then go on), retriable (try again) or fatal (the
    producer is done: `broken`, to be replaced)."""

    def __init__(self, config: dict[str, Any], timeout_seconds: float) -> None:
        """`timeout_seconds` bounds each round trip of a transaction, and of the initialisation."""
        super().__init__(config)
        self._timeout = timeout_seconds
        self._turn = asyncio.Lock()
        self.initialised = False

    async def start(self) -> None:
        """Initialise the transactions. One that times out (the transaction coordinator still loading on a fresh
        cluster, or the previous producer's transaction ending) leaves the producer started: starting it again
        resumes the initialisation, as librdkafka allows. Any other failure closes it."""
        if self._native is None:
            await super().start()
        try:
            await self._transactional(self.client.init_transactions, self._timeout)
        except ClientError as error:
            if not error.error.retriable():
                self._close()
            raise
        except BaseException:
            self._close()
            raise
        self.initialised = True

    async def _transactional(self, call: Any, *args: Any) -> None:
        """A call of the transactional API, off the loop; its error raised as ours, the producer marked broken
        when the error is fatal."""
        try:
            await self._calls.run(call, *args)
        except KafkaException as exception:
            error = raised(exception)
            if exception.args[0].fatal():
                self.broken = error
            raise error from None
        finally:
            self._dispatch()

    async def begin_transaction(self) -> None:
        if self.broken is not None:
            raise self.broken
        try:
            self.client.begin_transaction()  # local, no round trip
        except KafkaException as exception:
            raise raised(exception) from None

    async def commit_transaction(self) -> None:
        """Commit (flushing what was sent first). A commit that timed out goes on in the background: asked again,
        librdkafka resumes it; one that keeps timing out leaves the outcome unknown, and the producer broken."""
        for attempt in range(3):
            try:
                await self._transactional(self.client.commit_transaction, self._timeout)
                return
            except ClientError as error:
                if not error.error.retriable() or attempt == 2:
                    if not error.error.txn_requires_abort():
                        self.broken = self.broken or error
                    raise

    async def abort_transaction(self) -> None:
        try:
            await self._transactional(self.client.abort_transaction, self._timeout)
        except ClientError as error:
            self.broken = self.broken or error
            raise

    async def send_offsets_to_transaction(self, offsets: Mapping[Partition, int], group: GroupMetadata) -> None:
        natives = [TopicPartition(tp.topic, tp.partition, offset) for tp, offset in offsets.items()]
        await self._transactional(self.client.send_offsets_to_transaction, natives, group, self._timeout)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        async with self._turn:
            await self.begin_transaction()
            try:
                yield
                await self.commit_transaction()
            except BaseException:
                # Aborted while the producer can (a commit refused as abortable too); else it is to be replaced.
                if self.broken is None:
                    try:
                        await self.abort_transaction()
                    except (ClientError, asyncio.CancelledError) as error:
                        log.warning("transaction not aborted: %r; the producer is to be replaced", error)
                        self.broken = self.broken or ClientError(KafkaError(KafkaError._STATE, repr(error)))
                raise


def retrieve_exceptions(futures: Iterable["asyncio.Future[Any]"]) -> None:
    """Mark the exceptions of futures nobody awaits any more as seen: the transaction they were part of failed,
    and that is logged once, not once per future when it is garbage collected."""
    for future in futures:
        future.add_done_callback(lambda done: done.cancelled() or done.exception())
