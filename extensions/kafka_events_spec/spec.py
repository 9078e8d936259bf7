"""The `spec` answer as a typed model, and its problems, each with its path and what to type instead."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field as PydanticField
from pydantic import ValidationError, create_model, model_validator

from . import topics
from .base import Strict, problem, rule
from .patterns import ALL
from .topics import SpecTopic


class SpecBase(Strict):
    """The spec without the patterns' sections: `Spec` adds one per pattern."""

    consumer_group: Annotated[
        str,
        rule(r"[A-Za-z0-9._-]{1,249}", 'type a group id of letters, digits, ".", "_" or "-", e.g. agent-task-workers.'),
    ]
    topics: Annotated[list[SpecTopic], PydanticField(min_length=1)]

    @model_validator(mode="after")
    def _patterns(self) -> SpecBase:
        names = [topic.name for topic in self.topics]
        taken = set(names) | {f"{name}.dlq" for name in names}
        for pattern in ALL:
            taken |= pattern.check(self, taken)
        return self

    @model_validator(mode="after")
    def _across_topics(self) -> SpecBase:
        names: list[str] = []
        events: set[str] = set()
        for t, topic in enumerate(self.topics):
            if topic.name in names or f"{topic.name}.dlq" in names or topic.name.endswith(".dlq"):
                raise problem(
                    f'"{topic.name}" clashes with another topic or its dead-letter topic; type a distinct name.',
                    loc=f"topics[{t}].name",
                )
            names.append(topic.name)
            for e, event in enumerate(topic.events):
                if event.name in events:
                    raise problem(
                        f'"{event.name}" is declared twice; event names must be unique across topics.',
                        loc=f"topics[{t}].events[{e}].name",
                    )
                events.add(event.name)
        all_names = [topic.name for topic in self.topics]
        for t, topic in enumerate(self.topics):
            if topic.emits_to is None:
                continue
            if not topic.consumed:
                raise problem(
                    "only a consumed topic emits events; drop `emits_to` or `consumed: false`.",
                    loc=f"topics[{t}].emits_to",
                )
            if topic.emits_to not in all_names or topic.emits_to == topic.name:
                example = next((name for name in all_names if name != topic.name), "agent.task.history")
                raise problem(
                    f"name another topic of the spec that handlers of {topic.name} publish to, "
                    f"e.g. emits_to: {example}.",
                    loc=f"topics[{t}].emits_to",
                )
        return self


if TYPE_CHECKING:
    Spec = SpecBase  # a pattern reads its section with its own `section(spec)`
else:
    # Each pattern's section, under its name: optional, and ignored by the service when its pattern is not chosen.
    Spec = create_model("Spec", __base__=SpecBase, **{pattern.NAME: (pattern.SECTION | None, None) for pattern in ALL})


# What to type when a value has the wrong type or is missing, by the key's place in the spec.
ADVICE: dict[str, str] = {**topics.ADVICE, **{key: advice for pattern in ALL for key, advice in pattern.ADVICE.items()}}
KEYS: dict[str, tuple[str, ...]] = {
    "": tuple(Spec.model_fields),
    **topics.KEYS,
    **{key: names for pattern in ALL for key, names in pattern.KEYS.items()},
}


def _path(loc: Sequence[str | int]) -> str:
    path = "spec"
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _shape(loc: Sequence[str | int]) -> str:
    return ".".join(part for part in loc if isinstance(part, str))


def _message(error: Any) -> str:
    loc = [part for part in error["loc"] if part not in {"function-after[check(), str]"}]
    kind = error["type"]
    if kind == "extra_forbidden":
        parent, key = loc[:-1], loc[-1]
        known = ", ".join(f"`{name}`" for name in KEYS.get(_shape(parent), ()))
        hint = ""
        if _shape(parent).endswith(("fields", "events")) or _shape(parent) == "topics":
            hint = (
                ' If a `doc` holds a comma, quote it (doc: "..., ..."): in a {...} mapping the comma '
                "ends the value and starts a new key."
            )
        return f'{_path(parent)}: unknown key "{key}"; the keys here are {known}.{hint}'
    if kind == "spec_rule_at":
        where, advice = error["msg"].split("\x00", 1)
        return f"{_path(loc)}.{where}: {advice}" if loc else f"spec.{where}: {advice}"
    if kind == "spec_rule":
        # Raised by a model's own check: it concerns the model at `loc`, or a string rule at the key itself.
        return f"{_path(loc)}: {error['msg']}"
    if kind == "missing":
        return f"{_path(loc)}: missing; {ADVICE.get(_shape(loc), 'add it')}"
    advice = ADVICE.get(_shape(loc))
    if advice is None or isinstance(loc[-1], int):  # a whole topic, event or field that is not a mapping
        return f"{_path(loc)}: write a mapping with the keys {', '.join(KEYS.get(_shape(loc), ()))}."
    return f"{_path(loc)}: {advice}"


def problems(spec: Any) -> list[str]:
    """Every problem of the `spec` answer, each with its path and what to type instead; [] when it is valid."""
    if not isinstance(spec, dict):
        return ["The spec must be a mapping with `consumer_group` and `topics`; see docs/spec.md."]
    try:
        Spec.model_validate(spec)
    except ValidationError as invalid:
        return list(dict.fromkeys(_message(error) for error in invalid.errors()))
    return []


def parse(spec: Any) -> Spec:
    """The typed spec; ValueError with every problem when it is invalid."""
    found = problems(spec)
    if found:
        raise ValueError("\n".join(found))
    return Spec.model_validate(spec)


def pattern_problems(patterns: Any, spec: Any) -> list[str]:
    """What the chosen `patterns` miss in a valid `spec`, or what the spec configures for an unchosen pattern."""
    if problems(spec):
        return []  # the spec question reported those already
    chosen = set(patterns or ())
    found = []
    for pattern in ALL:
        name, example = pattern.NAME, pattern.EXAMPLE
        configured = spec.get(name) is not None
        if name in chosen and example is not None and not configured:
            found.append(f"spec.{name}: missing; the {name} pattern needs it, e.g. `{example}`; or unselect {name}.")
        if name not in chosen and configured:
            found.append(f"spec.{name} is set but the {name} pattern is not chosen: choose it, or drop spec.{name}.")
    parsed = Spec.model_validate(spec)
    for pattern in ALL:
        if pattern.NAME in chosen:
            found += pattern.answer_problems(spec, parsed)
    return found
