"""Reading a partition to its end, as the patterns' processes and `doctor` do to load what a partition holds."""

from collections.abc import AsyncIterator

from .port import Consumer, Partition, Record

POLL_TIMEOUT_MS = 500
"""How long one poll waits for records before its caller looks again at where it stands (a stop, an end)."""


async def read_to_end(reader: Consumer, tp: Partition, start: int, end: int) -> AsyncIterator[list[Record]]:
    """The records of `tp` (assigned to `reader`) from `start` to `end`, excluded, in batches as they are fetched.
    The position passes markers and aborted records, which no batch holds."""
    # An explicit offset: seek_to_beginning() right after assign() may lose to assign()'s own reset to the end, and
    # the partition would read as empty.
    reader.seek(tp, start)
    while await reader.position(tp) < end:
        batch = (await reader.getmany(tp, timeout_ms=POLL_TIMEOUT_MS)).get(tp, [])
        yield [record for record in batch if record.offset < end]
