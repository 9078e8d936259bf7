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
    problems,
)
from tests.patterns import PATTERNS as PATTERN_NAMES
from tests.patterns import knowledge
from tests.spec.samples import EVENT, SPEC, spec_with
from tools.render import REPO, render, variant_answers, variant_names

FIXTURES = REPO / "tests" / "fixtures"
DEFAULT_SPEC = yaml.safe_load(yaml.safe_load((REPO / "copier.yml").read_text())["spec"]["default"])

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
    # A queue (a share group) has no transactions and only librdkafka consumes one.
    (
        {"spec": spec_with("topics.0.delivery", "queue"), "delivery_guarantee": "exactly-once"},
        "delivery_guarantee",
        "type at-least-once",
    ),
    ({"spec": spec_with("topics.0.delivery", "queue")}, "kafka_client", "type confluent-kafka"),
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
    (spec_with("topics.0.delivery", "fifo"), "spec.topics[0].delivery: type stream (a consumer group"),
    (
        spec_with("topics.0.delivery", "queue")
        | {"topics": [SPEC["topics"][0] | {"delivery": "queue", "consumed": False}]},
        "spec.topics[0].delivery: things is a queue only for the service's own workers",
    ),
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
# The `patterns` answer. What the spec says for each pattern: tests/patterns/<name>/test_spec.py.


def chosen_sections(topic: str) -> dict[str, Any]:
    """What each pattern asks of a spec whose first topic is `topic` (tests/patterns/<name>/answers.py)."""
    sections = {name: module.section(topic) for name, module in knowledge("answers", PATTERN_NAMES).items()}
    return {name: section for name, section in sections.items() if section is not None}


def test_the_model_derives_each_chosen_patterns_names_and_only_those() -> None:
    spec = parse({**SPEC, **chosen_sections("things")})
    model = derive(spec, "things", list(reversed(PATTERN_NAMES)))
    assert model["patterns"] == list(PATTERN_NAMES), "in the one order PATTERNS gives"
    plain = derive(spec, "things")
    assert (plain["patterns"], *(plain[name] for name in PATTERN_NAMES)) == ([], *(None for _ in PATTERN_NAMES))


def test_every_pattern_choice_is_one_the_extension_knows() -> None:
    choices = yaml.safe_load((REPO / "copier.yml").read_text())["patterns"]["choices"]
    assert list(choices.values()) == list(PATTERNS)


def test_an_unchosen_pattern_leaves_no_trace(tmp_path: Path) -> None:
    dest = render({"project_name": "things", "spec": SPEC}, tmp_path / "out")
    assert not (dest / "src" / "things" / "patterns").exists()
    traces = {name: module.NO_TRACE_EXCEPT_IN for name, module in knowledge("answers", PATTERN_NAMES).items()}
    assert set(traces) == set(PATTERN_NAMES), "every pattern says where its name may stand unchosen"
    for path in dest.rglob("*"):
        if path.is_file() and path.suffix in {".py", ".yaml", ".toml", ".md"}:
            text = path.read_text().lower()
            for name, allowed in traces.items():
                assert path.name in allowed or name not in text, (name, path)
