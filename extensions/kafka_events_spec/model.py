"""The render model: what every template renders from (`model`), typed and frozen, derived from the spec and the
chosen patterns."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import create_model

from .base import RESERVED, Rendered
from .patterns import ALL, DATABASE
from .patterns.database import HEARTBEAT_TABLE
from .spec import Spec
from .topics import RecordModel, TopicModel, derive_topics


class PluginTopicModel(Rendered):
    """A topic a plug-in adds to those the runner consumes: its own event class and handler method."""

    ident: str
    name: str
    partitions: int
    module: str
    class_name: str
    snake: str
    doc: str
    handler_doc: list[str]
    handler_log: str
    handler_log_args: str


class RenderModelBase(Rendered):
    """The render model without the patterns' parts: `RenderModel` adds one per pattern."""

    consumer_group: str
    consumes: bool
    queues: bool
    """A consumed topic is a queue (`delivery: queue`): the service runs a share group beside its consumer group."""
    streams: bool
    """A topic is consumed as a stream (a consumed topic that is no queue, or a pattern's own): the service runs a
    consumer group."""
    headless: bool
    processes: list[str]
    topics: list[TopicModel]
    reserved: list[str]
    avro_namespace: str
    records: list[RecordModel]
    patterns: list[str]
    database: bool
    parts: list[str]
    plugins: list[str]
    heartbeat_table: str | None
    deferred_publish: bool
    plugin_topics: list[PluginTopicModel]


if TYPE_CHECKING:
    RenderModel = RenderModelBase
else:
    # Each pattern's part, under its name (`model.<name>`): None when the pattern is not chosen.
    RenderModel = create_model(
        "RenderModel",
        __base__=RenderModelBase,
        __doc__="What every template renders from (`model`), derived from the spec and the chosen patterns.",
        **{pattern.NAME: (pattern.MODEL | None, ...) for pattern in ALL},
    )


def render_model(spec: Spec, package_name: str, patterns: Sequence[str] = ()) -> RenderModel:
    """The typed model; `derive` is its JSON form, as the templates see it."""
    return RenderModel.model_validate(derive_fields(spec, package_name, patterns))


def derive(spec: Spec, package_name: str, patterns: Sequence[str] = ()) -> dict[str, Any]:
    """The model every template renders from, checked against `RenderModel`."""
    return render_model(spec, package_name, patterns).model_dump(mode="json", by_alias=True)


def derive_fields(spec: Spec, package_name: str, patterns: Sequence[str] = ()) -> dict[str, Any]:
    """The render model's fields, as plain data."""
    topics, records = derive_topics(spec.topics, package_name)
    chosen = [pattern for pattern in ALL if pattern.NAME in patterns]
    sections = {pattern.NAME: pattern.derive(spec, package_name) if pattern in chosen else None for pattern in ALL}
    database = any(pattern.NAME in DATABASE for pattern in chosen)
    # Where a pattern changes a topic, named by what it does: a topic stored before it is published (its 202
    # carries no partition or offset), and the topics a plug-in adds to those the runner consumes.
    stored = {name for pattern in chosen if (s := sections[pattern.NAME]) for name in pattern.stored_topics(s)}
    plugin_topics = [
        topic for pattern in chosen if (s := sections[pattern.NAME]) for topic in pattern.consumed_topics(s)
    ]
    for topic in topics:
        topic["stored"] = topic["name"] in stored
    consumes = any(topic.consumed for topic in spec.topics) or bool(plugin_topics)
    return {
        "consumer_group": spec.consumer_group,
        "consumes": consumes,
        "queues": any(topic.delivery == "queue" for topic in spec.topics),
        "streams": any(topic.consumed and topic.delivery != "queue" for topic in spec.topics) or bool(plugin_topics),
        # A process without the HTTP API serves /metrics on METRICS_PORT: the worker, a pattern's own process.
        "headless": consumes or any(pattern.PROCESS for pattern in chosen),
        # The chosen patterns that run a process of their own (an orchestrator, a sealer, channels).
        "processes": [pattern.NAME for pattern in chosen if pattern.PROCESS],
        "topics": topics,
        "reserved": list(RESERVED),
        "avro_namespace": f"{package_name}.events",
        "records": records,
        "patterns": [pattern.NAME for pattern in chosen],
        **sections,
        "database": database,
        # The template pieces of each plug-in, in this order: template/{% if false %}patterns{% endif %}/<name>/.
        "parts": [*(["database"] if database else []), *(pattern.NAME for pattern in chosen)],
        # The plug-ins main.py lists, as modules of the package: the database's first, then the patterns'.
        "plugins": [*(["database"] if database else []), *(f"patterns.{pattern.NAME}" for pattern in chosen)],
        "heartbeat_table": HEARTBEAT_TABLE if database else None,
        "deferred_publish": bool(stored),
        "plugin_topics": plugin_topics,
    }
