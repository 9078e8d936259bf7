"""What the service asks of a Kafka admin client, in terms of no client library: topics to create, the cluster's
brokers and partitions, a consumer group's members and commits. An admin module per client (aiokafka_admin.py,
confluent_admin.py) gives them one library's meaning; admin.py picks the service's."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from .port import Partition


@dataclass(frozen=True)
class DeclaredTopic:
    """A topic a plug-in keeps, with the partitions and configs its KafkaTopic declares."""

    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)


class PartitionState(NamedTuple):
    topic: str
    partition: int
    leader: int
    """The leader's node id; -1 while the partition has none (offline)."""
    replicas: list[int]
    isr: list[int]


class GroupMember(NamedTuple):
    member_id: str
    client_id: str
    host: str
    """As the broker saw the member's address (without the leading slash Kafka writes)."""
    partitions: frozenset[Partition]


class GroupState(NamedTuple):
    state: str
    """Kafka's name for it: Stable, PreparingRebalance, CompletingRebalance, Empty, Dead, ..."""
    members: list[GroupMember]


class Admin(Protocol):
    async def start(self) -> None:
        """Connect; fails when no broker can be reached."""

    async def close(self) -> None: ...

    async def topics(self) -> set[str]: ...

    async def create_topics(self, topics: Sequence[DeclaredTopic], replication_factor: int) -> None: ...

    async def partitions(self, topics: Sequence[str]) -> dict[str, list[PartitionState]]:
        """Each existing topic's partitions, in order; a topic that does not exist is left out."""

    async def brokers(self) -> set[int]:
        """The node ids of the brokers the cluster counts as alive."""

    async def topic_config(self, topics: Sequence[str], name: str) -> dict[str, str]:
        """Configuration `name` of each of the existing `topics`."""

    async def group(self, group: str) -> GroupState: ...

    async def committed(self, group: str) -> dict[Partition, int]:
        """The group's committed offset per partition it ever committed on."""
