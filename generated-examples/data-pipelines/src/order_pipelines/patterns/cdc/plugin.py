"""Change data capture as a plug-in: the consumer reads the change topic's JSON beside the spec's Avro."""

from ...plugins import Plugin
from .serde import WithChanges
from .topics import TOPICS


def plugin() -> Plugin:
    return Plugin(name="cdc", topics=TOPICS, consumed_serde=WithChanges)
