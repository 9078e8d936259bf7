"""The `saga` pattern: steps run in order by an orchestrator; a failure or timeout compensates the completed steps
in reverse order."""

from __future__ import annotations

import keyword
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field as PydanticField
from pydantic import model_validator

from ..base import IDENT_ADVICE, Rendered, Strict, problem, rule, section_of

if TYPE_CHECKING:
    from ..spec import Spec

NAME = "saga"
EXAMPLE: str | None = (
    "saga: {name: task_run, steps: [{name: reserve_credits, compensation: release_credits}, {name: run_agent}]}"
)
PROCESS = True
"""It runs a process without the HTTP API (the orchestrator)."""


class SpecSagaStep(Strict):
    """One step of the saga: its handler, the handler that undoes it, and how long it may take."""

    name: Annotated[str, rule(r"[a-z][a-z0-9_]{0,63}", IDENT_ADVICE)]
    compensation: Annotated[str, rule(r"[a-z][a-z0-9_]{0,63}", IDENT_ADVICE)] | None = None
    timeout_seconds: Annotated[int, PydanticField(ge=1, le=86_400)] = 60


class SpecSaga(Strict):
    """The `saga` pattern: steps run in order by an orchestrator; on a failure the completed steps' compensations
    run in reverse order."""

    name: Annotated[str, rule(r"[a-z][a-z0-9_]{0,40}", "type a saga name in snake_case, e.g. task_run.")]
    steps: Annotated[list[SpecSagaStep], PydanticField(min_length=1, max_length=50)]
    partitions: Annotated[int, PydanticField(ge=1, le=1000)] = 3

    @model_validator(mode="after")
    def _distinct_handlers(self) -> SpecSaga:
        seen: set[str] = set()
        for index, step in enumerate(self.steps):
            for key, handler in (("name", step.name), ("compensation", step.compensation)):
                if handler is None:
                    continue
                if keyword.iskeyword(handler) or keyword.issoftkeyword(handler):
                    raise problem(
                        f'"{handler}" is a Python keyword; type another name, e.g. {handler}_step.',
                        loc=f"steps[{index}].{key}",
                    )
                if handler in seen:
                    raise problem(
                        f'"{handler}" names two handlers; each step and compensation needs a name of its own, '
                        f"e.g. {handler}_{index + 1}.",
                        loc=f"steps[{index}].{key}",
                    )
                seen.add(handler)
        return self


def section(spec: Spec) -> SpecSaga | None:
    return section_of(spec, NAME, SpecSaga)


def saga_topics(saga: SpecSaga) -> dict[str, str]:
    """The saga's own topics: its commands and its compacted state."""
    slug = saga.name.replace("_", "-")
    return {"commands": f"saga.{slug}.commands", "state": f"saga.{slug}.state"}


ADVICE: dict[str, str] = {
    "saga": "write a mapping, e.g. `saga: {name: task_run, steps: [{name: reserve_credits, compensation: "
    "release_credits}, {name: run_agent}]}`.",
    "saga.name": "type a saga name in snake_case, e.g. task_run.",
    "saga.steps": "list the steps in the order they run, e.g. `steps: [{name: reserve_credits, compensation: "
    "release_credits, timeout_seconds: 30}, {name: run_agent}]`.",
    "saga.steps.name": IDENT_ADVICE,
    "saga.steps.compensation": "name the handler that undoes the step, e.g. compensation: release_credits; "
    "or leave it out when there is nothing to undo.",
    "saga.steps.timeout_seconds": "type a whole number of seconds from 1 to 86400, e.g. 30.",
    "saga.partitions": "type a whole number from 1 to 1000, e.g. 3.",
}

KEYS: dict[str, tuple[str, ...]] = {
    "saga": tuple(SpecSaga.model_fields),
    "saga.steps": tuple(SpecSagaStep.model_fields),
}


def check(spec: Spec, taken: set[str]) -> set[str]:
    saga = section(spec)
    if saga is None:
        return set()
    topics = set(saga_topics(saga).values())
    for topic in sorted(topics):
        if topic in taken:
            raise problem(
                f"the saga's topic {topic} is a topic of the spec already; type another saga name, "
                f"e.g. {saga.name}_saga.",
                loc="saga.name",
            )
    return topics


def answer_problems(spec: dict[str, Any], parsed: Spec) -> list[str]:
    return []


class SagaStepModel(Rendered):
    name: str
    compensation: str | None
    timeout_seconds: int


class SagaModel(Rendered):
    name: str
    slug: str
    class_name: str
    commands: str
    state: str
    partitions: int
    group: str
    route: str
    max_timeout_seconds: int
    steps: list[SagaStepModel]


def derive(spec: Spec, package_name: str) -> dict[str, Any] | None:
    saga = section(spec)
    if saga is None:
        return None
    slug = saga.name.replace("_", "-")
    return {
        "name": saga.name,
        "slug": slug,
        "class_name": "".join(word.capitalize() for word in saga.name.split("_")),
        **saga_topics(saga),
        "partitions": saga.partitions,
        "group": f"{spec.consumer_group}.saga-{slug}",
        "route": f"/sagas/{slug}",
        "max_timeout_seconds": max(step.timeout_seconds for step in saga.steps),
        "steps": [step.model_dump() for step in saga.steps],
    }


def stored_topics(section: dict[str, Any]) -> list[str]:
    return []


def consumed_topics(section: dict[str, Any]) -> list[dict[str, Any]]:
    return []


SECTION = SpecSaga
MODEL = SagaModel
