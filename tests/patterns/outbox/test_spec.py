"""The outbox's part of the spec: what it refuses, with advice, and what it derives."""

from __future__ import annotations

from typing import Any

import pytest

from extensions.kafka_events_spec import derive, parse, pattern_problems, problems
from tests.spec.samples import SPEC

DATA_PIPELINE_REFUSALS = [
    ({**SPEC, "outbox": {"topics": ["nowhere"]}}, 'spec.outbox.topics[0]: "nowhere" is not a topic of the spec'),
    ({**SPEC, "outbox": {"topics": ["things", "things"]}}, 'spec.outbox.topics[1]: "things" appears twice'),
    ({**SPEC, "outbox": {"topics": []}}, "spec.outbox.topics: list the topics whose POST routes write to the outbox"),
    ({**SPEC, "outbox": {"topic": "things"}}, 'spec.outbox: unknown key "topic"; the keys here are `topics`.'),
    ({**SPEC, "outbox": ["things"]}, "spec.outbox: write a mapping, e.g. `outbox: {topics: [agent.tasks]}`"),
    (
        {**SPEC, "topics": [{**SPEC["topics"][0], "name": "outbox"}], "outbox": {}},
        'spec.outbox.topics: the domain table of outbox would be "outbox", a table of the service itself',
    ),
]


@pytest.mark.parametrize(("spec", "advice"), DATA_PIPELINE_REFUSALS, ids=[r[1][:50] for r in DATA_PIPELINE_REFUSALS])
def test_a_bad_data_pipeline_setting_is_refused_with_its_path_and_advice(spec: Any, advice: str) -> None:
    found = problems(spec)
    assert any(advice in problem for problem in found), found


def test_the_outbox_defaults_to_every_topic() -> None:
    assert pattern_problems(["outbox"], SPEC) == [], "every topic's POST route writes to the outbox by default"
    assert pattern_problems([], {**SPEC, "outbox": {}}) == [
        "spec.outbox is set but the outbox pattern is not chosen: choose it, or drop spec.outbox."
    ]


def test_the_model_derives_the_outbox_tables_and_connector() -> None:
    outbox = derive(parse(SPEC), "things", ["outbox"])["outbox"]
    assert outbox["topics"] == ["things"]
    assert outbox["tables"] == [{"topic": "things", "ident": "things", "table": "things", "key": "thing_id"}]
    assert outbox["connector"] == "things-outbox"
    config = outbox["config"]
    assert (config["slot.name"], config["publication.name"]) == ("things_outbox", "things_outbox")
    assert config["table.include.list"] == "public.outbox"
    assert config["snapshot.mode"] == "no_data"
    assert config["value.converter"] == "io.debezium.converters.BinaryDataConverter"
    # The header names a direct publish uses (kafka/producer.py and correlation.py in the template).
    placement = config["transforms.outbox.table.fields.additional.placement"]
    assert placement.split(",") == [
        "type:header:event-type",
        "id:header:event-id",
        "correlation_id:header:correlation-id",
        "causation_id:header:causation-id",
    ]
    assert derive(parse(SPEC), "things")["outbox"] is None
