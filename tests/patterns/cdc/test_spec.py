"""Change data capture's part of the spec: what it refuses, with advice, and what it derives."""

from __future__ import annotations

from typing import Any

import pytest

from extensions.kafka_events_spec import derive, parse, pattern_problems, problems
from tests.spec.samples import SPEC

CDC = {
    "table": "customers",
    "key": "customer_id",
    "columns": [{"name": "customer_id", "type": "long"}, {"name": "email", "type": "string", "optional": True}],
}

DATA_PIPELINE_REFUSALS = [
    ({**SPEC, "cdc": {**CDC, "key": "id"}}, 'spec.cdc.key: the key "id" must be one of the columns'),
    (
        {**SPEC, "cdc": {**CDC, "key": "email"}},
        'spec.cdc.key: the key column "email" cannot be optional; drop `optional`.',
    ),
    ({**SPEC, "cdc": {**CDC, "table": "Customers"}}, "spec.cdc.table: type a table or column name in snake_case"),
    ({**SPEC, "cdc": {**CDC, "table": "outbox"}}, 'spec.cdc.table: "outbox" is a table of the service itself'),
    ({**SPEC, "cdc": {**CDC, "columns": []}}, "spec.cdc.columns: list the table's columns, e.g."),
    (
        {**SPEC, "cdc": {**CDC, "columns": [*CDC["columns"], {"name": "email", "type": "string"}]}},
        'spec.cdc.columns[2].name: "email" appears twice; keep one.',
    ),
    (
        {**SPEC, "cdc": {**CDC, "columns": [{"name": "customer_id", "type": "decimal"}]}},
        "spec.cdc.columns[0].type: type one of string, int, long",
    ),
    ({**SPEC, "cdc": {**CDC, "topic": "things"}}, 'spec.cdc.topic: the change topic "things" clashes with a topic'),
    ({**SPEC, "cdc": {"table": "customers"}}, "spec.cdc.key: missing; name the column that is the table's primary key"),
    (
        {**SPEC, "outbox": {}, "cdc": {**CDC, "table": "things"}},
        'spec.cdc.table: "things" is the outbox\'s domain table of a topic; type another table name.',
    ),
]


@pytest.mark.parametrize(("spec", "advice"), DATA_PIPELINE_REFUSALS, ids=[r[1][:50] for r in DATA_PIPELINE_REFUSALS])
def test_a_bad_data_pipeline_setting_is_refused_with_its_path_and_advice(spec: Any, advice: str) -> None:
    found = problems(spec)
    assert any(advice in problem for problem in found), found


def test_cdc_needs_its_table() -> None:
    assert pattern_problems(["cdc"], SPEC) == [
        "spec.cdc: missing; the cdc pattern needs it, e.g. `cdc: {table: customers, key: id, columns: "
        "[{name: id, type: long}, {name: name, type: string}]}`; or unselect cdc."
    ]
    assert pattern_problems([], {**SPEC, "cdc": CDC}) == [
        "spec.cdc is set but the cdc pattern is not chosen: choose it, or drop spec.cdc."
    ]
    assert pattern_problems(["outbox", "cdc"], {**SPEC, "cdc": CDC}) == []


def test_the_model_derives_the_captured_table_and_its_change_topic() -> None:
    model = derive(parse({**SPEC, "topics": [{**SPEC["topics"][0], "consumed": False}], "cdc": CDC}), "things", ["cdc"])
    cdc = model["cdc"]
    assert model["consumes"], "the change topic is consumed even when no topic of the spec is"
    assert (cdc["topic"], cdc["dlq"], cdc["ident"]) == (
        "customers.changes",
        "customers.changes.dlq",
        "customers_changes",
    )
    assert (cdc["class_name"], cdc["change_class"], cdc["change_snake"]) == (
        "CustomersRow",
        "CustomersChange",
        "customers_change",
    )
    assert [(c["name"], c["sql"], c["py_type"], c["optional"]) for c in cdc["columns"]] == [
        ("customer_id", "bigint", "int", False),
        ("email", "text", "str", True),
    ]
    assert cdc["config"]["snapshot.mode"] == "initial"
    assert cdc["config"]["transforms.topic.replacement"] == "customers.changes"
    assert (cdc["config"]["slot.name"], cdc["config"]["publication.name"]) == ("things_cdc", "things_cdc")
    named = derive(parse({**SPEC, "cdc": {**CDC, "topic": "crm.customers"}}), "things", ["cdc"])["cdc"]
    assert named["topic"] == "crm.customers"
