"""Bad answers are refused before anything is rendered, with a message that says what to type instead.

The spec's refusals are checked in Python (extensions/spec.py); a few go through Copier to prove it loads them."""

from __future__ import annotations

import copy
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml

from extensions.kafka_events_spec import (
    FIELD_TYPES,
    PATTERNS,
    RESERVED,
    SpecExtension,
    TypeName,
    derive,
    parse,
    pattern_problems,
    problems,
)
from tools.render import REPO, render, variant_answers, variant_names

FIXTURES = REPO / "tests" / "fixtures"
DEFAULT_SPEC = yaml.safe_load(yaml.safe_load((REPO / "copier.yml").read_text())["spec"]["default"])

EVENT = {"name": "ThingHappened", "fields": [{"name": "thing_id", "type": "string"}]}
SPEC: dict[str, Any] = {
    "consumer_group": "things",
    "topics": [{"name": "things", "key": "thing_id", "events": [EVENT]}],
}


def spec_with(path: str, value: Any) -> dict[str, Any]:
    """SPEC with one value replaced, addressed like `topics.0.events.0.name`."""
    spec = copy.deepcopy(SPEC)
    *parents, last = [int(part) if part.isdigit() else part for part in path.split(".")]
    node: Any = spec
    for part in parents:
        node = node[part]
    node[last] = value
    return spec


ANSWER_REFUSALS = [
    ({"project_name": "Agent Tasks"}, "project_name", "e.g. agent-tasks"),
    ({"project_name": "-agents"}, "project_name", "starts with a letter"),
    ({"package_name": "2fast"}, "package_name", "Type a Python identifier"),
    ({"package_name": "Agent-Tasks"}, "package_name", "Type a Python identifier"),
    ({"package_name": "class"}, "package_name", "Python keyword"),
    ({"package_name": "kafka"}, "package_name", "type another name, e.g. kafka_service"),
    ({"k8s_name": "Agent_Tasks"}, "k8s_name", "DNS-1123"),
    ({"k8s_name": "a" * 64}, "k8s_name", "at most 63"),
    ({"description": "  "}, "description", "Type one sentence"),
    ({"schema_subject_strategy": "topic"}, "schema_subject_strategy", "type topic-record (or record) instead"),
    # A few spec refusals through Copier too: the extension is loaded and its message reaches the user.
    ({"spec": ["not", "a", "mapping"]}, "spec", "must be a mapping"),
    ({"spec": spec_with("topics.0.key", "missing_field")}, "spec", 'the topic key "missing_field" must be a field'),
    ({"spec": spec_with("topics.0.events.0.fields.0.type", "uuid")}, "spec", "type one of string, int, long"),
]

# (spec, the path and advice the message must hold), checked in Python without rendering.
SPEC_REFUSALS = [
    (["not", "a", "mapping"], "must be a mapping"),
    (spec_with("consumer_group", "bad group!"), "spec.consumer_group: type a group id"),
    ({"topics": SPEC["topics"]}, "spec.consumer_group: missing; type a group id"),
    (spec_with("topics", []), "spec.topics: list at least one topic"),
    (spec_with("topics.0", "things"), "spec.topics[0]: write a mapping with the keys name,"),
    (spec_with("topics.0.name", "bad topic"), "spec.topics[0].name: type a Kafka topic name"),
    (spec_with("topics.0.name", "t" * 245), "spec.topics[0].name: type a Kafka topic name of letters, digits"),
    (spec_with("topics.0.name", ".."), "spec.topics[0].name: type a Kafka topic name"),
    (spec_with("topics.0.name", "things.dlq"), 'spec.topics[0].name: "things.dlq" clashes with another topic'),
    (spec_with("topics.0.name", "agent.task_events"), 'spec.topics[0].name: "agent.task_events" mixes'),
    (spec_with("topics.0.partitions", 0), "spec.topics[0].partitions: type a whole number from 1 to 1000"),
    (spec_with("topics.0.partitions", "6"), "spec.topics[0].partitions: type a whole number from 1 to 1000"),
    (spec_with("topics.0.route", "tasks"), "spec.topics[0].route: type an HTTP path"),
    (spec_with("topics.0.key", "missing_field"), 'spec.topics[0].events[0]: the topic key "missing_field" must be'),
    (spec_with("topics.0.key", "Thing"), "spec.topics[0].key: name the field whose value keys each record"),
    (spec_with("topics.0.consumed", "yes"), "spec.topics[0].consumed: type true or false"),
    (spec_with("topics.0.emits_to", "nowhere"), "spec.topics[0].emits_to: name another topic"),
    (spec_with("topics.0.emits_to", "things"), "spec.topics[0].emits_to: name another topic"),
    (spec_with("topics.0.events", []), "spec.topics[0].events: list at least one event"),
    (spec_with("topics.0.events.0.name", "thing_happened"), "spec.topics[0].events[0].name: type an event name in Pa"),
    (spec_with("topics.0.events.0.fields", []), "spec.topics[0].events[0].fields: list at least one field"),
    (spec_with("topics.0.events.0.fields.0.type", "uuid"), "fields[0].type: type one of string, int, long, float"),
    (spec_with("topics.0.events.0.fields.0.name", "ThingId"), "fields[0].name: type a field name in snake_case"),
    (spec_with("topics.0.events.0.fields.0.name", "event_id"), 'fields[0].name: "event_id" is set by the service'),
    (spec_with("topics.0.events.0.fields.0.name", "type"), 'fields[0].name: "type" is set by the service'),
    (spec_with("topics.0.events.0.fields.0.name", "class"), 'fields[0].name: "class" is a Python keyword'),
    (spec_with("topics.0.events.0.fields.0.name", "match"), 'fields[0].name: "match" is a Python keyword'),
    (spec_with("topics.0.events.0.fields.0.optional", "no"), "fields[0].optional: type true or false"),
    (spec_with("topics.0.partition", 3), 'spec.topics[0]: unknown key "partition"; the keys here are `name`'),
    (spec_with("topic", []), 'spec: unknown key "topic"; the keys here are `consumer_group`, `topics`'),
    (
        spec_with("topics.0.events.0.fields.0.when it names one", None),
        'spec.topics[0].events[0].fields[0]: unknown key "when it names one"',
    ),
]


@pytest.mark.parametrize(("spec", "advice"), SPEC_REFUSALS, ids=[r[1][:50] for r in SPEC_REFUSALS])
def test_a_bad_spec_is_refused_with_its_path_and_advice(spec: Any, advice: str) -> None:
    found = problems(spec)
    assert found, "refused"
    assert any(advice in problem for problem in found), found


def test_a_valid_spec_has_no_problems() -> None:
    assert problems(SPEC) == []
    for name in variant_names():
        assert problems(variant_answers(name).get("spec", DEFAULT_SPEC)) == [], name


def test_two_topics_sharing_an_event_name_are_refused() -> None:
    spec = copy.deepcopy(SPEC)
    spec["topics"].append({"name": "others", "key": "thing_id", "events": [EVENT]})
    assert problems(spec) == [
        'spec.topics[1].events[0].name: "ThingHappened" is declared twice; event names must be unique across topics.'
    ]


def test_a_field_declared_twice_is_refused() -> None:
    spec = spec_with("topics.0.events.0.fields", [EVENT["fields"][0], EVENT["fields"][0]])
    assert problems(spec) == [
        'spec.topics[0].events[0].fields[1].name: "thing_id" appears twice in ThingHappened; keep one.'
    ]


def test_only_a_consumed_topic_may_emit() -> None:
    spec = copy.deepcopy(SPEC)
    spec["topics"].append({"name": "outcomes", "key": "thing_id", "events": [{**EVENT, "name": "ThingDone"}]})
    spec["topics"][0] |= {"consumed": False, "emits_to": "outcomes"}
    assert any("only a consumed topic emits events" in problem for problem in problems(spec))


def test_a_spec_has_no_cap_on_its_event_types(tmp_path: Path) -> None:
    """Copier's yield tag writes one schema file per record, however many there are."""
    spec = copy.deepcopy(SPEC)
    spec["topics"][0]["events"] = [{**EVENT, "name": f"Thing{i}Happened"} for i in range(60)]
    dest = render({"project_name": "things", "spec": spec}, tmp_path / "out")
    assert len(list((dest / "schemas").glob("things.events.Thing*Happened.avsc"))) == 60


def test_every_problem_is_reported_at_once() -> None:
    spec = spec_with("topics.0.partitions", 0)
    spec["consumer_group"] = "bad group!"
    assert len(problems(spec)) == 2


def test_field_types_and_reserved_names_come_from_one_list() -> None:
    types = typing.get_args(TypeName)
    assert set(types) == set(FIELD_TYPES)
    assert RESERVED == ("event_id", "occurred_at", "type")
    documented = (REPO / "docs" / "spec.md").read_text()
    assert ", ".join(f"`{name}`" for name in FIELD_TYPES) in documented


def test_the_model_fills_in_defaults_and_casings() -> None:
    model = derive(parse(SPEC), "things")
    topic = model["topics"][0]
    assert (topic["route"], topic["partitions"], topic["consumed"], topic["ident"]) == ("/things", 3, True, "things")
    assert topic["events"][0]["snake"] == "thing_happened"
    assert [record["file"] for record in model["records"]] == ["things.events.ThingHappened.avsc"]
    fields = model["records"][0]["schema"]["fields"]
    assert [field["name"] for field in fields] == ["event_id", "occurred_at", "thing_id"]


def test_only_a_consumer_is_asked_for_a_delivery_guarantee() -> None:
    assert SpecExtension._consumes(SPEC)
    assert not SpecExtension._consumes(variant_answers("producer-only")["spec"])
    assert derive(parse(variant_answers("producer-only")["spec"]), "intake")["consumes"] is False


def test_the_exactly_once_variant_as_it_stood_is_refused_naming_the_unknown_key(tmp_path: Path) -> None:
    """An unquoted doc with a comma in a {...} mapping split into a second key; it used to pass unnoticed."""
    answers = yaml.safe_load((FIXTURES / "exactly-once-unquoted-doc.yml").read_text())
    with pytest.raises(ValueError, match="question 'spec'") as refused:
        render(answers, tmp_path / "out")
    message = str(refused.value)
    assert 'spec.topics[1].events[0].fields[1]: unknown key "when it names one."' in message
    assert 'quote it (doc: "..., ...")' in message
    assert not (tmp_path / "out" / "src").exists()


@pytest.mark.parametrize(("answers", "question", "advice"), ANSWER_REFUSALS, ids=[r[2][:40] for r in ANSWER_REFUSALS])
def test_a_bad_answer_is_refused_with_advice(
    answers: dict[str, Any], question: str, advice: str, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=f"question '{question}'") as refused:
        render(answers, tmp_path / "out")
    assert advice in str(refused.value)
    assert not (tmp_path / "out" / "src").exists(), "nothing is rendered from a refused answer"


def test_a_valid_minimal_spec_renders(tmp_path: Path) -> None:
    dest = render({"project_name": "things", "spec": SPEC}, tmp_path / "out")
    catalog = (dest / "src" / "things" / "events" / "catalog.py").read_text()
    assert 'name="things"' in catalog
    assert "ThingHappened" in catalog


@pytest.mark.filterwarnings("ignore:Dirty template changes")
def test_the_template_asks_for_trust_to_run_its_spec_extension(tmp_path: Path) -> None:
    from copier import run_copy

    with pytest.raises(Exception, match="--trust") as refused:
        run_copy(str(REPO), str(tmp_path / "out"), defaults=True, vcs_ref="HEAD", quiet=True, unsafe=False)
    assert "jinja_extensions" in str(refused.value)


# ------------------------------------------------------------------------------------------------------------------
# The `patterns` answer and what the spec says for each pattern.

FANOUT = {"topic": "things", "channels": ["email", "sms"]}
SAGA = {"name": "run", "steps": [{"name": "reserve", "compensation": "release", "timeout_seconds": 5}, {"name": "act"}]}

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
    ({**SPEC, "audit": {"retention_days": 0}}, "spec.audit.retention_days: type a whole number of days from 1"),
    ({**SPEC, "audit": {"retention": 30}}, 'spec.audit: unknown key "retention"; the keys here are `topic`'),
    ({**SPEC, "audit": {"topic": "things"}}, 'spec.audit.topic: "things" clashes with a topic of the spec'),
    ({**SPEC, "audit": {"topic": "things.dlq"}}, 'spec.audit.topic: "things.dlq" clashes'),
    ({**SPEC, "audit": {"topic": "audit_log.things"}}, 'spec.audit.topic: "audit_log.things" mixes "." and "_"'),
    ({**SPEC, "audit": {"topic": "bad topic"}}, "spec.audit.topic: type a Kafka topic name"),
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
    assert pattern_problems(["fanout"], SPEC) == [
        "spec.fanout: missing; the fanout pattern needs it, e.g. "
        "`fanout: {topic: agent.tasks, channels: [email, sms, push]}`; or unselect fanout."
    ]
    assert pattern_problems(["audit"], SPEC) == [], "the audit log's defaults fit any spec"
    assert pattern_problems([], {**SPEC, "fanout": FANOUT}) == [
        "spec.fanout is set but the fanout pattern is not chosen: choose it, or drop spec.fanout."
    ]
    assert pattern_problems(["fanout", "audit"], {**SPEC, "fanout": FANOUT, "audit": {}}) == []
    assert pattern_problems(["saga"], SPEC) == [
        "spec.saga: missing; the saga pattern needs it, e.g. `saga: {name: task_run, steps: [{name: "
        "reserve_credits, compensation: release_credits}, {name: run_agent}]}`; or unselect saga."
    ]
    assert pattern_problems([], {**SPEC, "saga": SAGA}) == [
        "spec.saga is set but the saga pattern is not chosen: choose it, or drop spec.saga."
    ]
    assert pattern_problems(["saga"], {**SPEC, "saga": SAGA}) == []


def test_the_audit_logs_default_topic_must_be_free() -> None:
    spec = copy.deepcopy(SPEC)
    spec["topics"].append(
        {**spec["topics"][0], "name": "things.audit", "consumed": False, "events": [{**EVENT, "name": "ThingAudited"}]}
    )
    assert problems(spec) == []
    (problem,) = pattern_problems(["audit"], spec)
    assert problem.startswith("spec.audit.topic: the default things.audit is a topic of the spec already")


def test_the_model_derives_each_chosen_patterns_names_and_only_those() -> None:
    spec = parse({**SPEC, "fanout": FANOUT, "audit": {"retention_days": 30}})
    model = derive(spec, "things", ["audit", "fanout"])
    assert model["patterns"] == ["fanout", "audit"], "in the one order PATTERNS gives"
    assert model["fanout"]["channels"] == [
        {"name": "email", "group": "things.email", "dlq": "things.email.dlq"},
        {"name": "sms", "group": "things.sms", "dlq": "things.sms.dlq"},
    ]
    assert model["audit"] | {} == {
        "topic": "things.audit",
        "intake": "things.audit.intake",
        "partitions": 3,
        "sealer_group": "things.audit-sealer",
        "retention_ms": 30 * 86_400_000,
    }
    assert derive(parse(SPEC), "things", ["audit"])["audit"]["retention_ms"] == -1, "kept forever by default"
    plain = derive(spec, "things")
    assert (plain["patterns"], plain["fanout"], plain["audit"], plain["saga"]) == ([], None, None, None)


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


def test_every_pattern_choice_is_one_the_extension_knows() -> None:
    choices = yaml.safe_load((REPO / "copier.yml").read_text())["patterns"]["choices"]
    assert list(choices.values()) == list(PATTERNS)


def test_a_chosen_pattern_without_its_spec_is_refused_through_copier(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="question 'patterns'") as refused:
        render({"project_name": "things", "spec": SPEC, "patterns": ["fanout"]}, tmp_path / "out")
    assert "spec.fanout: missing" in str(refused.value)
    assert not (tmp_path / "out" / "src").exists()


def test_an_unchosen_pattern_leaves_no_trace(tmp_path: Path) -> None:
    dest = render({"project_name": "things", "spec": SPEC}, tmp_path / "out")
    assert not (dest / "src" / "things" / "patterns").exists()
    for path in dest.rglob("*"):
        if path.is_file() and path.suffix in {".py", ".yaml", ".toml", ".md"}:
            text = path.read_text()
            assert "fanout" not in text.lower(), path
            assert "audit" not in text.lower(), path
            assert "saga" not in text.lower(), path
            # The stack launcher every project carries knows Connect's transforms; the service knows no outbox.
            assert path.name == "kafka_stack.py" or "outbox" not in text.lower(), path


def test_chosen_patterns_render_their_modules(tmp_path: Path) -> None:
    spec = {**SPEC, "fanout": FANOUT}
    dest = render({"project_name": "things", "spec": spec, "patterns": ["fanout", "audit"]}, tmp_path / "out")
    package = dest / "src" / "things" / "patterns"
    assert sorted(p.name for p in (package / "fanout").glob("to_*.py")) == ["to_email.py", "to_sms.py"]
    assert (package / "audit" / "sealer.py").exists()


# The data pipeline patterns: the outbox and change data capture.

CDC = {
    "table": "customers",
    "key": "customer_id",
    "columns": [{"name": "customer_id", "type": "long"}, {"name": "email", "type": "string", "optional": True}],
}

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


def test_cdc_needs_its_table_and_the_outbox_defaults_to_every_topic() -> None:
    assert pattern_problems(["outbox"], SPEC) == [], "every topic's POST route writes to the outbox by default"
    assert pattern_problems(["cdc"], SPEC) == [
        "spec.cdc: missing; the cdc pattern needs it, e.g. `cdc: {table: customers, key: id, columns: "
        "[{name: id, type: long}, {name: name, type: string}]}`; or unselect cdc."
    ]
    assert pattern_problems([], {**SPEC, "cdc": CDC}) == [
        "spec.cdc is set but the cdc pattern is not chosen: choose it, or drop spec.cdc."
    ]
    assert pattern_problems([], {**SPEC, "outbox": {}}) == [
        "spec.outbox is set but the outbox pattern is not chosen: choose it, or drop spec.outbox."
    ]
    assert pattern_problems(["outbox", "cdc"], {**SPEC, "cdc": CDC}) == []


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
