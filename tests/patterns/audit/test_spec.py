"""The audit log's part of the spec: what it refuses, with advice, and what it derives."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from extensions.kafka_events_spec import derive, parse, pattern_problems, problems
from tests.spec.samples import EVENT, SPEC
from tools.render import render

PATTERN_SPEC_REFUSALS = [
    ({**SPEC, "audit": {"retention_days": 0}}, "spec.audit.retention_days: type a whole number of days from 1"),
    ({**SPEC, "audit": {"retention": 30}}, 'spec.audit: unknown key "retention"; the keys here are `topic`'),
    ({**SPEC, "audit": {"topic": "things"}}, 'spec.audit.topic: "things" clashes with a topic of the spec'),
    ({**SPEC, "audit": {"topic": "things.dlq"}}, 'spec.audit.topic: "things.dlq" clashes'),
    ({**SPEC, "audit": {"topic": "audit_log.things"}}, 'spec.audit.topic: "audit_log.things" mixes "." and "_"'),
    ({**SPEC, "audit": {"topic": "bad topic"}}, "spec.audit.topic: type a Kafka topic name"),
]


@pytest.mark.parametrize(("spec", "advice"), PATTERN_SPEC_REFUSALS, ids=[r[1][:50] for r in PATTERN_SPEC_REFUSALS])
def test_a_bad_pattern_setting_is_refused_with_its_path_and_advice(spec: Any, advice: str) -> None:
    found = problems(spec)
    assert any(advice in problem for problem in found), found


def test_a_chosen_pattern_needs_its_spec_and_an_unchosen_one_none() -> None:
    assert pattern_problems(["audit"], SPEC) == [], "the audit log's defaults fit any spec"


def test_the_audit_logs_default_topic_must_be_free() -> None:
    spec = copy.deepcopy(SPEC)
    spec["topics"].append(
        {**spec["topics"][0], "name": "things.audit", "consumed": False, "events": [{**EVENT, "name": "ThingAudited"}]}
    )
    assert problems(spec) == []
    (problem,) = pattern_problems(["audit"], spec)
    assert problem.startswith("spec.audit.topic: the default things.audit is a topic of the spec already")


def test_the_model_derives_the_audit_logs_topics_group_and_retention() -> None:
    model = derive(parse({**SPEC, "audit": {"retention_days": 30}}), "things", ["audit"])
    assert model["audit"] | {} == {
        "topic": "things.audit",
        "intake": "things.audit.intake",
        "partitions": 3,
        "sealer_group": "things.audit-sealer",
        "retention_ms": 30 * 86_400_000,
    }
    assert derive(parse(SPEC), "things", ["audit"])["audit"]["retention_ms"] == -1, "kept forever by default"


def test_a_chosen_audit_log_renders_its_sealer(tmp_path: Path) -> None:
    dest = render({"project_name": "things", "spec": SPEC, "patterns": ["audit"]}, tmp_path / "out")
    assert (dest / "src" / "things" / "patterns" / "audit" / "sealer.py").exists()
