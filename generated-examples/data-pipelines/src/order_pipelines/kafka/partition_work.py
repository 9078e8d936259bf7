"""One partition's fetched records and which of them may be handled now: up to `concurrency` at once, never two of
one key at once, and each key's records in offset order (records of one key are in one partition, so this is
the key's whole order). The offset to commit is the lowest one not handled yet: everything below it is done."""

from collections import deque

from .port import Record


class PartitionWork:
    def __init__(self, concurrency: int) -> None:
        self._concurrency = concurrency
        self._pending: deque[Record] = deque()
        self._in_flight: dict[int, bytes | None] = {}
        # Released (their key and slot free for the next records) but not finished: not committable yet.
        self._released: set[int] = set()
        self._next_offset: int | None = None
        self.first_offset: int | None = None
        """The first record queued: where to read again from if this work is dropped before any commit."""

    def add(self, records: list[Record]) -> None:
        """Queue fetched records. One already queued (a fetch repeating what this work holds) is kept once."""
        for record in records:
            if self._next_offset is not None and record.offset < self._next_offset:
                continue
            if self.first_offset is None:
                self.first_offset = record.offset
            self._pending.append(record)
            self._next_offset = record.offset + 1

    def start(self) -> list[Record]:
        """The records that may start now, taken out of the queue; the caller must `finish` each."""
        started: list[Record] = []
        busy = set(self._in_flight.values())
        waiting: list[Record] = []
        while self._pending and len(self._in_flight) < self._concurrency:
            record = self._pending.popleft()
            if record.key in busy:
                # An earlier record of this key is in flight or waiting: this one waits behind it, in order.
                waiting.append(record)
                continue
            busy.add(record.key)
            self._in_flight[record.offset] = record.key
            started.append(record)
        self._pending.extendleft(reversed(waiting))
        return started

    def release(self, offset: int) -> None:
        """The record's writes are queued in order: its key and slot may go to the next records, while it stays
        unfinished until `finish`. A no-op for a record not in flight."""
        if offset in self._in_flight:
            del self._in_flight[offset]
            self._released.add(offset)

    def finish(self, offset: int) -> None:
        self._in_flight.pop(offset, None)
        self._released.discard(offset)

    @property
    def commit_offset(self) -> int | None:
        """One past the longest handled prefix of what was queued: the lowest offset still waiting or in flight."""
        unfinished: list[int] = [
            *self._in_flight,
            *self._released,
            *([self._pending[0].offset] if self._pending else []),
        ]
        if unfinished:
            return min(unfinished)
        return self._next_offset

    @property
    def drained(self) -> bool:
        """Every record queued so far is finished."""
        return not (self._pending or self._in_flight or self._released)

    @property
    def waiting(self) -> int:
        return len(self._pending)

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)
