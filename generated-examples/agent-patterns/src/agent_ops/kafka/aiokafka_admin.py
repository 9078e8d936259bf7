"""The admin port (admin_port.py) on aiokafka's admin client."""

from collections.abc import Sequence

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiokafka.errors import UnknownTopicOrPartitionError

from ..settings import Settings
from .admin_port import DeclaredTopic, GroupMember, GroupState, PartitionState
from .connection import connection_options
from .port import Partition


class Admin:
    def __init__(self, settings: Settings) -> None:
        self._client = AIOKafkaAdminClient(**connection_options(settings))

    async def start(self) -> None:
        await self._client.start()

    async def close(self) -> None:
        await self._client.close()

    async def topics(self) -> set[str]:
        return set(await self._client.list_topics())

    async def create_topics(self, topics: Sequence[DeclaredTopic], replication_factor: int) -> None:
        await self._client.create_topics(
            [NewTopic(t.name, t.partitions, replication_factor, topic_configs=t.config) for t in topics]
        )

    async def partitions(self, topics: Sequence[str]) -> dict[str, list[PartitionState]]:
        found: dict[str, list[PartitionState]] = {}
        for topic in await self._client.describe_topics(list(topics)):
            if topic["error_code"] == UnknownTopicOrPartitionError.errno:
                continue
            found[topic["topic"]] = sorted(
                PartitionState(topic["topic"], p["partition"], p["leader"], list(p["replicas"]), list(p["isr"]))
                for p in topic["partitions"]
            )
        return found

    async def brokers(self) -> set[int]:
        return {broker["node_id"] for broker in (await self._client.describe_cluster())["brokers"]}

    async def topic_config(self, topics: Sequence[str], name: str) -> dict[str, str]:
        wanted = [ConfigResource(ConfigResourceType.TOPIC, topic, {name: None}) for topic in topics]
        found: dict[str, str] = {}
        for response in await self._client.describe_configs(wanted):
            for _error, _message, _type, topic, entries, *_ in response.resources:
                for entry in entries:
                    if entry[0] == name:
                        found[topic] = entry[1]
        return found

    async def group(self, group: str) -> GroupState:
        (response,) = await self._client.describe_consumer_groups([group])
        _error, _group, state, _protocol_type, _protocol, described, *_ = response.groups[0]
        members: list[GroupMember] = []
        for member in described:
            # DescribeGroups v4+ adds group_instance_id after member_id.
            member_id, *rest = member
            client_id, client_host, _metadata, assignment = rest[-4:]
            partitions = ConsumerProtocolMemberAssignment.decode(assignment).partitions() if assignment else []
            members.append(
                GroupMember(
                    member_id, client_id, client_host.lstrip("/"), frozenset(Partition(*tp) for tp in partitions)
                )
            )
        return GroupState(state, members)

    async def committed(self, group: str) -> dict[Partition, int]:
        offsets = await self._client.list_consumer_group_offsets(group)
        return {Partition(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
