"""The `audit` pattern: an append-only, hash-chained log of every event the service publishes and processes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field as PydanticField

from ..base import TOPIC_NAME_ADVICE, Rendered, Strict, problem, rule, section_of

if TYPE_CHECKING:
    from ..spec import Spec

NAME = "audit"
EXAMPLE: str | None = None
PROCESS = True
"""It runs a process without the HTTP API (the sealer)."""


class SpecAudit(Strict):
    """The `audit` pattern: an append-only, hash-chained log of every event the service publishes and processes."""

    topic: Annotated[str, rule(r"(?!\.{1,2}$)[A-Za-z0-9._-]{1,240}", TOPIC_NAME_ADVICE)] | None = None
    partitions: Annotated[int, PydanticField(ge=1, le=1000)] = 3
    retention_days: Annotated[int, PydanticField(ge=1, le=36500)] | None = None


def section(spec: Spec) -> SpecAudit | None:
    return section_of(spec, NAME, SpecAudit)


def audit_topic(spec: Spec) -> str:
    """The audit log's topic: as the spec names it, else beside the first topic."""
    audit = section(spec)
    named = audit.topic if audit is not None else None
    return named or f"{spec.topics[0].name}.audit"


ADVICE: dict[str, str] = {
    "audit": "write a mapping, e.g. `audit: {retention_days: 365}`, or leave it out for the defaults.",
    "audit.topic": TOPIC_NAME_ADVICE,
    "audit.partitions": "type a whole number from 1 to 1000, e.g. 3.",
    "audit.retention_days": "type a whole number of days from 1 to 36500, or leave it out to keep the log forever.",
}

KEYS: dict[str, tuple[str, ...]] = {"audit": tuple(SpecAudit.model_fields)}


def check(spec: Spec, taken: set[str]) -> set[str]:
    audit = section(spec)
    if audit is None or audit.topic is None:
        return set()
    names = [topic.name for topic in spec.topics]
    topic = audit.topic
    if topic in taken or topic.endswith(".dlq"):
        raise problem(
            f'"{topic}" clashes with a topic of the spec or a dead-letter topic; type a distinct name, '
            f"e.g. {names[0]}.audit.",
            loc="audit.topic",
        )
    if "." in topic and "_" in topic:
        raise problem(
            f'"{topic}" mixes "." and "_", which collide in Kafka metric names; use one of them, '
            f"e.g. {topic.replace('_', '.')}.",
            loc="audit.topic",
        )
    return {topic}


def answer_problems(spec: dict[str, Any], parsed: Spec) -> list[str]:
    taken = {name for topic in parsed.topics for name in (topic.name, f"{topic.name}.dlq")}
    if audit_topic(parsed) not in taken:
        return []
    return [
        f"spec.audit.topic: the default {audit_topic(parsed)} is a topic of the spec already; "
        "name another, e.g. `audit: {topic: audit.log}`."
    ]


class AuditModel(Rendered):
    topic: str
    intake: str
    partitions: int
    sealer_group: str
    retention_ms: int


def derive(spec: Spec, package_name: str) -> dict[str, Any] | None:
    audit = section(spec) or SpecAudit()
    topic = audit_topic(spec)
    return {
        "topic": topic,
        "intake": f"{topic}.intake",
        "partitions": audit.partitions,
        "sealer_group": f"{spec.consumer_group}.audit-sealer",
        "retention_ms": audit.retention_days * 86_400_000 if audit.retention_days else -1,
    }


def stored_topics(section: dict[str, Any]) -> list[str]:
    return []


def consumed_topics(section: dict[str, Any]) -> list[dict[str, Any]]:
    return []


SECTION = SpecAudit
MODEL = AuditModel
