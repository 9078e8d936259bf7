"""A group's committed offsets and its partitions' end offsets, read as `kafka-consumer-groups --describe` does:
for the lag gauge and for `doctor`."""

from collections.abc import Iterable

from ..kafka.admin import Admin
from ..kafka.client import committed_reader
from ..kafka.port import Consumer, Partition
from ..settings import Settings


class OffsetReader:
    """An admin client for the group's commits and a group-less consumer for end offsets, started together."""

    def __init__(self, settings: Settings) -> None:
        self.admin = Admin(settings)
        # read_committed: the end of a partition is its last stable offset, where this service's consumer stops.
        self.consumer = committed_reader(settings)
        self._settings = settings
        self._readers: dict[str, Consumer] = {}

    async def start(self) -> None:
        await self.admin.start()
        try:
            await self.consumer.start()
        except BaseException:
            await self.admin.close()
            raise

    async def stop(self) -> None:
        try:
            for reader in self._readers.values():
                await reader.stop()
            await self.consumer.stop()
        finally:
            await self.admin.close()

    async def committed(self, group: str) -> dict[Partition, int]:
        """The group's committed offset per partition it ever committed on."""
        return await self.admin.committed(group)

    async def commits_of(self, group: str, partitions: Iterable[Partition]) -> dict[Partition, int]:
        """The group's commits on `partitions`, fetched as a member of it fetches its own (OffsetFetch) by a
        consumer that never joins it. Not through the admin API, which a service process calls every scrape:
        librdkafka's admin offset listing crashed its process while a group coordinator was moving."""
        reader = self._readers.get(group)
        if reader is None:
            reader = self._readers[group] = committed_reader(self._settings, group_id=group)
            try:
                await reader.start()
            except BaseException:
                del self._readers[group]
                raise
        commits = {partition: await reader.committed(partition) for partition in sorted(partitions)}
        return {partition: offset for partition, offset in commits.items() if offset is not None and offset >= 0}

    async def ends(self, partitions: Iterable[Partition]) -> dict[Partition, int]:
        wanted = sorted(partitions)
        return dict(await self.consumer.end_offsets(wanted)) if wanted else {}

    async def beginnings(self, partitions: Iterable[Partition]) -> dict[Partition, int]:
        wanted = sorted(partitions)
        return dict(await self.consumer.beginning_offsets(wanted)) if wanted else {}

    async def lag(self, group: str, partitions: Iterable[Partition]) -> dict[Partition, int]:
        """Records between the group's commit (or the log's start, before any commit) and the end."""
        wanted = set(partitions)
        committed = await self.commits_of(group, wanted)
        ends = await self.ends(wanted)
        starts = await self.beginnings(wanted - set(committed))
        return {tp: max(ends[tp] - committed.get(tp, starts.get(tp, 0)), 0) for tp in wanted if tp in ends}
