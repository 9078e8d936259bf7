"""The `fanout` pattern: every event of one topic reaches each channel through a consumer group of its own."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field as PydanticField
from pydantic import model_validator

from ..base import Rendered, Strict, problem, rule, section_of, words

if TYPE_CHECKING:
    from ..spec import Spec

NAME = "fanout"
EXAMPLE: str | None = "fanout: {topic: agent.tasks, channels: [email, sms, push]}"
"""What the pattern needs in the spec (None: nothing, its defaults fit)."""
PROCESS = True
"""It runs a process without the HTTP API (the channels)."""


class SpecFanout(Strict):
    """The `fanout` pattern: every event of `topic` reaches each channel through a consumer group of its own."""

    topic: str
    channels: Annotated[
        list[
            Annotated[
                str, rule(r"[a-z][a-z0-9]{0,30}", "type a channel name of lower-case letters and digits, e.g. email.")
            ]
        ],
        PydanticField(min_length=1, max_length=20),
    ]

    @model_validator(mode="after")
    def _unique_channels(self) -> SpecFanout:
        for index, channel in enumerate(self.channels):
            if channel in self.channels[:index]:
                raise problem(f'"{channel}" appears twice; keep one.', loc=f"channels[{index}]")
        return self


ADVICE: dict[str, str] = {
    "fanout": "write a mapping, e.g. `fanout: {topic: agent.tasks, channels: [email, sms, push]}`.",
    "fanout.topic": "name the topic of the spec whose events every channel receives, e.g. topic: agent.tasks.",
    "fanout.channels": "list the channels by name, e.g. `channels: [email, sms, push]`.",
}

KEYS: dict[str, tuple[str, ...]] = {"fanout": tuple(SpecFanout.model_fields)}


def section(spec: Spec) -> SpecFanout | None:
    return section_of(spec, NAME, SpecFanout)


def check(spec: Spec, taken: set[str]) -> set[str]:
    """What the pattern's section must agree on with the rest of the spec; the topics it adds."""
    fanout = section(spec)
    if fanout is None:
        return set()
    names = [topic.name for topic in spec.topics]
    if fanout.topic not in names:
        raise problem(
            f"name the topic of the spec whose events every channel receives, e.g. topic: {names[0]}.",
            loc="fanout.topic",
        )
    for index, channel in enumerate(fanout.channels):
        if f"{fanout.topic}.{channel}.dlq" in taken:
            raise problem(
                f'the dead-letter topic of channel "{channel}" would be {fanout.topic}.{channel}.dlq, '
                "a topic of the spec already; type another channel name.",
                loc=f"fanout.channels[{index}]",
            )
    return {f"{fanout.topic}.{channel}.dlq" for channel in fanout.channels}


def answer_problems(spec: dict[str, Any], parsed: Spec) -> list[str]:
    """What keeps the pattern from being chosen with this (valid) spec."""
    if any(topic.consumed for topic in parsed.topics):
        return []
    return [
        "patterns: fanout's channels run on the consumer runner of the spec's consumed topics, and no topic is "
        "consumed: mark a topic `consumed: true` (the fanned-out one will do), or unselect fanout."
    ]


class ChannelModel(Rendered):
    name: str
    group: str
    dlq: str


class FanoutModel(Rendered):
    topic: str
    topic_ident: str
    partitions: int
    channels: list[ChannelModel]


def derive(spec: Spec, package_name: str) -> dict[str, Any] | None:
    fanout = section(spec)
    if fanout is None:
        return None
    source = next(topic for topic in spec.topics if topic.name == fanout.topic)
    return {
        "topic": source.name,
        "topic_ident": "_".join(words(source.name)).lower(),
        "partitions": source.partitions,
        "channels": [
            {
                "name": channel,
                "group": f"{spec.consumer_group}.{channel}",
                "dlq": f"{source.name}.{channel}.dlq",
            }
            for channel in fanout.channels
        ],
    }


def stored_topics(section: dict[str, Any]) -> list[str]:
    return []


def consumed_topics(section: dict[str, Any]) -> list[dict[str, Any]]:
    return []


SECTION = SpecFanout
MODEL = FanoutModel
