"""The fan-out's part of the spec: what it refuses, with advice, and what it derives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from extensions.kafka_events_spec import derive, parse, pattern_problems, problems
from tests.spec.samples import SPEC
from tools.render import render

FANOUT = {"topic": "things", "channels": ["email", "sms"]}

PATTERN_SPEC_REFUSALS = [
    ({**SPEC, "fanout": {**FANOUT, "topic": "nowhere"}}, "spec.fanout.topic: name the topic of the spec whose events"),
    ({**SPEC, "fanout": {**FANOUT, "channels": []}}, "spec.fanout.channels: list the channels by name"),
    ({**SPEC, "fanout": {**FANOUT, "channels": ["E-mail"]}}, "spec.fanout.channels[0]: type a channel name of lower"),
    ({**SPEC, "fanout": {**FANOUT, "channels": ["sms", "sms"]}}, 'spec.fanout.channels[1]: "sms" appears twice'),
    (
        {**SPEC, "fanout": {**FANOUT, "channel": ["sms"]}},
        'spec.fanout: unknown key "channel"; the keys here are `topic`',
    ),
    ({**SPEC, "fanout": ["email"]}, "spec.fanout: write a mapping, e.g. `fanout: {topic: agent.tasks, channels:"),
]


@pytest.mark.parametrize(("spec", "advice"), PATTERN_SPEC_REFUSALS, ids=[r[1][:50] for r in PATTERN_SPEC_REFUSALS])
def test_a_bad_pattern_setting_is_refused_with_its_path_and_advice(spec: Any, advice: str) -> None:
    found = problems(spec)
    assert any(advice in problem for problem in found), found


def test_a_chosen_pattern_needs_its_spec_and_an_unchosen_one_none() -> None:
    assert pattern_problems(["fanout"], SPEC) == [
        "spec.fanout: missing; the fanout pattern needs it, e.g. "
        "`fanout: {topic: agent.tasks, channels: [email, sms, push]}`; or unselect fanout."
    ]
    assert pattern_problems([], {**SPEC, "fanout": FANOUT}) == [
        "spec.fanout is set but the fanout pattern is not chosen: choose it, or drop spec.fanout."
    ]
    assert pattern_problems(["fanout", "audit"], {**SPEC, "fanout": FANOUT, "audit": {}}) == []


def test_the_model_derives_a_group_and_a_dead_letter_topic_per_channel() -> None:
    model = derive(parse({**SPEC, "fanout": FANOUT}), "things", ["fanout"])
    assert model["fanout"]["channels"] == [
        {"name": "email", "group": "things.email", "dlq": "things.email.dlq"},
        {"name": "sms", "group": "things.sms", "dlq": "things.sms.dlq"},
    ]


def test_a_chosen_pattern_without_its_spec_is_refused_through_copier(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="question 'patterns'") as refused:
        render({"project_name": "things", "spec": SPEC, "patterns": ["fanout"]}, tmp_path / "out")
    assert "spec.fanout: missing" in str(refused.value)
    assert not (tmp_path / "out" / "src").exists()


def test_a_chosen_fanout_renders_a_module_per_channel(tmp_path: Path) -> None:
    spec = {**SPEC, "fanout": FANOUT}
    dest = render({"project_name": "things", "spec": spec, "patterns": ["fanout"]}, tmp_path / "out")
    package = dest / "src" / "things" / "patterns"
    assert sorted(p.name for p in (package / "fanout").glob("to_*.py")) == ["to_email.py", "to_sms.py"]
