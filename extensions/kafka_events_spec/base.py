"""What every part of the spec extension shares: the field types, the envelope every event carries, and how a
problem is raised with the advice a user reads."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict
from pydantic_core import PydanticCustomError


@dataclass(frozen=True)
class FieldType:
    python: str
    avro: str | dict[str, str]
    sql: str


# The one list of field types: the spec's names, and what each becomes in Python and in Avro.
FIELD_TYPES: dict[str, FieldType] = {
    "string": FieldType("str", "string", "text"),
    "int": FieldType("int", "int", "integer"),
    "long": FieldType("int", "long", "bigint"),
    "float": FieldType("float", "float", "real"),
    "double": FieldType("float", "double", "double precision"),
    "boolean": FieldType("bool", "boolean", "boolean"),
    "timestamp": FieldType("datetime", {"type": "long", "logicalType": "timestamp-millis"}, "timestamptz"),
}


TypeName = Literal["string", "int", "long", "float", "double", "boolean", "timestamp"]


# The one list of reserved names: the envelope every event carries, set by the service.
ENVELOPE: tuple[dict[str, Any], ...] = (
    {
        "name": "event_id",
        "type": {"type": "string", "logicalType": "uuid"},
        "doc": "Unique per event; consumers de-duplicate on it.",
    },
    {
        "name": "occurred_at",
        "type": {"type": "long", "logicalType": "timestamp-millis"},
        "doc": "When the event happened (UTC).",
    },
)


RESERVED: tuple[str, ...] = (*(field["name"] for field in ENVELOPE), "type")


def rule(pattern: str, advice: str) -> Any:
    """A string that must match `pattern`; else the problem is `advice`."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise PydanticCustomError("spec_rule", advice)
        return value

    return AfterValidator(check)


def problem(advice: str, loc: str | None = None) -> PydanticCustomError:
    """A problem of the model being checked, or (`loc`) of one of its keys, e.g. loc="name"."""
    if loc is None:
        return PydanticCustomError("spec_rule", advice)
    return PydanticCustomError("spec_rule_at", "{loc}\x00" + advice, {"loc": loc})


class Strict(BaseModel):
    # Unknown keys are refused: a typo, or a flow mapping split at a comma, must not pass silently.
    model_config = ConfigDict(extra="forbid", strict=True)


FIELD_NAME_ADVICE = "type a field name in snake_case, e.g. task_id."


TOPIC_NAME_ADVICE = (
    'type a Kafka topic name of letters, digits, ".", "_" or "-", at most 244 characters, e.g. agent.tasks.audit.'
)


IDENT_ADVICE = "type a name in snake_case (it names a Python method), e.g. reserve_credits."


SQL_NAME_ADVICE = "type a table or column name in snake_case, e.g. customers."


def words(name: str) -> list[str]:
    return re.sub(r"[^A-Za-z0-9]+", " ", name).strip().split()


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


Section = TypeVar("Section", bound=BaseModel)


def section_of(spec: BaseModel, name: str, kind: type[Section]) -> Section | None:
    """A pattern's section of the spec: the spec's field named after the pattern (spec.py makes one per pattern)."""
    value = getattr(spec, name, None)
    return value if isinstance(value, kind) else None


class Rendered(BaseModel):
    """A part of the render model: typed and frozen, and nothing but its fields (a name a template misspells is
    caught by tests/render/test_model_names.py, not rendered as empty text)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
