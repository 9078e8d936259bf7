"""Every name a template reads from the render model exists on it. Jinja renders a misspelt `model.x` (or
`topic.x` in a loop over `model.topics`) as empty text; here it fails, checked against the typed `RenderModel`."""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from extensions.kafka_events_spec import RenderModel, TopicModel
from tools.render import REPO

# Collected alike by every test worker: no bytecode a test run may leave beside the launcher.
TEMPLATES = sorted(
    path for path in (REPO / "template").rglob("*") if path.is_file() and "__pycache__" not in path.parts
)
CHAIN = re.compile(r"(?<![\w.'\"])([a-z_]+)((?:\.[a-z_][a-z0-9_]*)+)")
# `{% for topic in model.topics %}`, `{% for event in topic.events if ... %}`, `{% yield channel from model.x %}`.
LOOP = re.compile(r"\{%-?\s*(?:for|yield)\s+([a-z_]+)\s+(?:in|from)\s+\(?([a-z_]+(?:\.[a-z_][a-z0-9_]*)*)")
RAW = re.compile(r"\{%-?\s*raw\s*-?%\}.*?\{%-?\s*endraw\s*-?%\}", re.DOTALL)
JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)


def unwrapped(annotation: Any) -> Any:
    """`X` for `X | None`."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        (kept,) = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return kept
    return annotation


def resolve(kind: Any, attributes: list[str]) -> tuple[Any, str | None]:
    """The type `attributes` reach from `kind`; the first name that does not exist, if one does not."""
    for name in attributes:
        kind = unwrapped(kind)
        if not (isinstance(kind, type) and issubclass(kind, BaseModel)):
            return kind, None  # a list, a dict, a string: Jinja's own attributes and filters from here on
        fields = {field.alias or key: field for key, field in kind.model_fields.items()}
        if name not in fields:
            return kind, name
        kind = fields[name].annotation
    return kind, None


def element(kind: Any) -> Any:
    kind = unwrapped(kind)
    return typing.get_args(kind)[0] if typing.get_origin(kind) is list else None


def missing_names(template: str) -> list[str]:
    """What `template`'s Jinja reads from the model, or from a loop variable over a part of it, that the model does
    not have (the text around the Jinja, and raw blocks, are output: Python or Helm that merely look alike)."""
    text = "\n".join(JINJA.findall(RAW.sub("", template)))
    bound: dict[str, list[Any]] = {"model": [RenderModel]}
    for variable, source in LOOP.findall(text):
        root, *attributes = source.split(".")
        for kind in bound.get(root, []):
            reached, absent = resolve(kind, attributes)
            item = element(reached) if absent is None else None
            if item is not None:
                bound.setdefault(variable, []).append(item)
    missing = []
    for root, chain in CHAIN.findall(text):
        if root not in bound:
            continue
        attributes = chain.lstrip(".").split(".")
        results = [resolve(kind, attributes) for kind in bound[root]]
        if all(absent is not None for _, absent in results):
            missing.append(f"{root}{chain}")
    return missing


def test_the_check_finds_a_misspelt_name() -> None:
    assert missing_names("{{ model.consumer_group }} {{ model.topics | first }}") == []
    assert missing_names("{% if model.consume %}") == ["model.consume"]
    assert missing_names("{% for topic in model.topics %}{{ topic.stored }}{{ topic.key_field }}") == [
        "topic.key_field"
    ]
    assert missing_names("{% for t in model.topics %}{% for e in t.events %}{{ e.effect.copies }}{{ e.efect }}") == [
        "e.efect"
    ]
    assert "stored" in TopicModel.model_fields


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda path: str(path.relative_to(REPO / "template")))
def test_every_model_name_a_template_reads_exists(template: Path) -> None:
    try:
        text = template.read_text()
    except UnicodeDecodeError:
        return
    names = str(template.relative_to(REPO / "template")) + "\n" + text
    assert missing_names(names) == []
