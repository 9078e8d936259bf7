"""The admin port (admin_port.py) on librdkafka's admin client. Its calls return concurrent futures, resolved by
librdkafka's own thread: awaited here through `asyncio.wrap_future`, never blocking the event loop."""

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import Future
from typing import TypeVar

from confluent_kafka import (
    ConsumerGroupState,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    TopicCollection,
)
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # re-exported, but no __all__ says so
    AdminClient,
    ConfigResource,
    NewTopic,
    ResourceType,
)

from ..settings import Settings
from .admin_port import DeclaredTopic, GroupMember, GroupState, PartitionState
from .connection import connection_options
from .port import Partition

log = logging.getLogger(__name__)
T = TypeVar("T")

START_TIMEOUT_SECONDS = 10.0
"""How long `start` waits for a broker's answer: librdkafka would retry an unreachable cluster for as long as each
request's own timeout (a minute)."""

STATES = {
    ConsumerGroupState.STABLE: "Stable",
    ConsumerGroupState.PREPARING_REBALANCING: "PreparingRebalance",
    ConsumerGroupState.COMPLETING_REBALANCING: "CompletingRebalance",
    ConsumerGroupState.EMPTY: "Empty",
    ConsumerGroupState.DEAD: "Dead",
}
"""librdkafka's group states by the names Kafka (and aiokafka, and `kafka-consumer-groups`) gives them."""


async def result(future: "Future[T]") -> T:
    return await asyncio.wrap_future(future)


UNSEEN = {KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError.TOPIC_AUTHORIZATION_FAILED}
"""A topic that does not exist, or that the user may not describe: left out of an answer, as aiokafka leaves it."""


async def found(futures: dict[str, "Future[T]"], missing: int | set[int]) -> dict[str, T]:
    """Each future's result by its key, leaving out those that failed with error code `missing` (or one of them)."""
    left_out = missing if isinstance(missing, set) else {missing}
    results: dict[str, T] = {}
    for key, future in futures.items():
        try:
            results[key] = await result(future)
        except KafkaException as error:
            if error.args[0].code() not in left_out:
                raise
    return results


class Admin:
    def __init__(self, settings: Settings) -> None:
        self._client = AdminClient(connection_options(settings))

    async def start(self) -> None:
        await result(self._client.describe_cluster(request_timeout=START_TIMEOUT_SECONDS))

    async def close(self) -> None:
        """Nothing to close: librdkafka's handle is destroyed with the object."""

    async def topics(self) -> set[str]:
        metadata = await asyncio.to_thread(self._client.list_topics, timeout=START_TIMEOUT_SECONDS)
        return set(metadata.topics)

    async def create_topics(self, topics: Sequence[DeclaredTopic], replication_factor: int) -> None:
        wanted = [NewTopic(t.name, t.partitions, replication_factor, config=t.config) for t in topics]
        for name, future in self._client.create_topics(wanted).items():
            try:
                await result(future)
            except KafkaException as error:
                code = error.args[0].code()
                # Another process may have created it meanwhile: what was wanted exists.
                if code == KafkaError.TOPIC_AUTHORIZATION_FAILED:
                    # A user without Create (or Describe) on it: in a cluster its KafkaTopic declares it.
                    log.warning("not allowed to create topic %s; the cluster must declare it", name)
                elif code != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise

    async def partitions(self, topics: Sequence[str]) -> dict[str, list[PartitionState]]:
        described = await found(self._client.describe_topics(TopicCollection(list(topics))), UNSEEN)
        return {
            topic: [
                PartitionState(
                    topic,
                    p.id,
                    -1 if p.leader is None else p.leader.id,
                    [node.id for node in p.replicas],
                    [node.id for node in p.isr],
                )
                for p in sorted(description.partitions, key=lambda p: p.id)
            ]
            for topic, description in described.items()
        }

    async def brokers(self) -> set[int]:
        cluster = await result(self._client.describe_cluster())
        return {node.id for node in cluster.nodes}

    async def topic_config(self, topics: Sequence[str], name: str) -> dict[str, str]:
        futures = self._client.describe_configs([ConfigResource(ResourceType.TOPIC, topic) for topic in topics])
        configs = await found({resource.name: future for resource, future in futures.items()}, UNSEEN)
        return {topic: config[name].value for topic, config in configs.items() if name in config}

    async def group(self, group: str) -> GroupState:
        (future,) = self._client.describe_consumer_groups([group]).values()
        described = await result(future)
        members = [
            GroupMember(
                member.member_id,
                member.client_id,
                member.host.lstrip("/"),
                frozenset(Partition(tp.topic, tp.partition) for tp in member.assignment.topic_partitions),
            )
            for member in described.members
        ]
        return GroupState(STATES.get(described.state, "Unknown"), members)

    async def committed(self, group: str) -> dict[Partition, int]:
        (future,) = self._client.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)]).values()
        offsets = await result(future)
        return {Partition(tp.topic, tp.partition): tp.offset for tp in offsets.topic_partitions if tp.offset >= 0}
