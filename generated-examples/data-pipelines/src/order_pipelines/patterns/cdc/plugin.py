"""Change data capture as a plug-in: the consumer reads the change topic's JSON beside the spec's Avro."""

from ...plugins import Plugin
from ..topics import ensure_pattern_topics
from .serde import WithChanges


def plugin() -> Plugin:
    return Plugin(name="cdc", ensure_topics=ensure_pattern_topics, consumed_serde=WithChanges)
