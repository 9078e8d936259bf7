"""The saga's part of the spec: what it refuses, with advice, and what it derives."""

from __future__ import annotations

from typing import Any

import pytest

from extensions.kafka_events_spec import derive, parse, pattern_problems, problems
from tests.spec.samples import EVENT, SPEC

SAGA = {"name": "run", "steps": [{"name": "reserve", "compensation": "release", "timeout_seconds": 5}, {"name": "act"}]}

PATTERN_SPEC_REFUSALS = [
    ({**SPEC, "saga": {**SAGA, "name": "TaskRun"}}, "spec.saga.name: type a saga name in snake_case, e.g. task_run."),
    ({**SPEC, "saga": {**SAGA, "steps": []}}, "spec.saga.steps: list the steps in the order they run, e.g."),
    ({**SPEC, "saga": {"name": "run"}}, "spec.saga.steps: missing; list the steps in the order they run"),
    ({**SPEC, "saga": {**SAGA, "steps": ["reserve"]}}, "spec.saga.steps[0]: write a mapping with the keys name,"),
    (
        {**SPEC, "saga": {**SAGA, "steps": [{"name": "Reserve"}]}},
        "spec.saga.steps[0].name: type a name in snake_case (it names a Python method), e.g. reserve_credits.",
    ),
    (
        {**SPEC, "saga": {**SAGA, "steps": [{"name": "reserve", "timeout_seconds": 0}]}},
        "spec.saga.steps[0].timeout_seconds: type a whole number of seconds from 1 to 86400",
    ),
    (
        {**SPEC, "saga": {**SAGA, "steps": [{"name": "reserve", "timeout": 30}]}},
        'spec.saga.steps[0]: unknown key "timeout"; the keys here are `name`, `compensation`, `timeout_seconds`.',
    ),
    (
        {**SPEC, "saga": {**SAGA, "steps": [{"name": "reserve", "compensation": "reserve"}]}},
        'spec.saga.steps[0].compensation: "reserve" names two handlers; each step and compensation needs a name',
    ),
    (
        {**SPEC, "saga": {**SAGA, "steps": [{"name": "reserve"}, {"name": "pass"}]}},
        'spec.saga.steps[1].name: "pass" is a Python keyword; type another name, e.g. pass_step.',
    ),
    (
        {
            **SPEC,
            "topics": [
                *SPEC["topics"],
                {
                    **SPEC["topics"][0],
                    "name": "saga.run.state",
                    "consumed": False,
                    "events": [{**EVENT, "name": "StateSeen"}],
                },
            ],
            "saga": SAGA,
        },
        "spec.saga.name: the saga's topic saga.run.state is a topic of the spec already; type another saga name",
    ),
    ({**SPEC, "saga": ["reserve"]}, "spec.saga: write a mapping, e.g. `saga: {name: task_run, steps:"),
]


@pytest.mark.parametrize(("spec", "advice"), PATTERN_SPEC_REFUSALS, ids=[r[1][:50] for r in PATTERN_SPEC_REFUSALS])
def test_a_bad_pattern_setting_is_refused_with_its_path_and_advice(spec: Any, advice: str) -> None:
    found = problems(spec)
    assert any(advice in problem for problem in found), found


def test_a_chosen_pattern_needs_its_spec_and_an_unchosen_one_none() -> None:
    assert pattern_problems(["saga"], SPEC) == [
        "spec.saga: missing; the saga pattern needs it, e.g. `saga: {name: task_run, steps: [{name: "
        "reserve_credits, compensation: release_credits}, {name: run_agent}]}`; or unselect saga."
    ]
    assert pattern_problems([], {**SPEC, "saga": SAGA}) == [
        "spec.saga is set but the saga pattern is not chosen: choose it, or drop spec.saga."
    ]
    assert pattern_problems(["saga"], {**SPEC, "saga": SAGA}) == []


def test_the_model_derives_the_sagas_topics_group_and_steps() -> None:
    saga = derive(parse({**SPEC, "saga": SAGA}), "things", ["saga"])["saga"]
    assert saga | {} == {
        "name": "run",
        "slug": "run",
        "class_name": "Run",
        "commands": "saga.run.commands",
        "state": "saga.run.state",
        "partitions": 3,
        "group": "things.saga-run",
        "route": "/sagas/run",
        "max_timeout_seconds": 60,
        "steps": [
            {"name": "reserve", "compensation": "release", "timeout_seconds": 5},
            {"name": "act", "compensation": None, "timeout_seconds": 60},
        ],
    }
