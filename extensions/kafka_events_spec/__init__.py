"""The `spec` answer as a typed model: validation with advice, and the derived `model` the templates render from.

A module per concern: `base` (field types, the envelope, raising a problem with advice), `topics`, each pattern in
`patterns/` (its part of the spec, checks, advice and render model; `patterns.ALL` lists them), `spec` (the whole
spec and its problems), `model` (the typed render model) and `extension` (the Jinja filters copier.yml uses).
Copier loads it through extensions/spec.py; it uses only pydantic and jinja2, which Copier itself needs.
"""

from __future__ import annotations

from .base import FIELD_TYPES, RESERVED, TypeName
from .extension import SpecExtension
from .model import RenderModel, derive, render_model
from .patterns import ALL
from .spec import Spec, parse, pattern_problems, problems
from .topics import TopicModel

PATTERNS: dict[str, str | None] = {pattern.NAME: pattern.EXAMPLE for pattern in ALL}
"""The `patterns` answer's choices, each with what it needs from the spec (None: nothing, its defaults fit)."""

__all__ = [
    "FIELD_TYPES",
    "PATTERNS",
    "RESERVED",
    "RenderModel",
    "Spec",
    "SpecExtension",
    "TopicModel",
    "TypeName",
    "derive",
    "parse",
    "pattern_problems",
    "problems",
    "render_model",
]
