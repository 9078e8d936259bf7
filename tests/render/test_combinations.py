"""The whole answer space, cheaply: a pairwise covering array of the answers, each row rendered and held to the bar
of every variant (formatted, lint clean, strictly typed, its unit tests green), no broker.

Every pair of values of any two answers below is in some row; a combination the template cannot serve is refused
by a validator with advice, and the refusals are proven here too. The array is built by a small deterministic
greedy algorithm (AETG-like: each row starts from the first pair still uncovered and takes, answer by answer, the
value that covers most new pairs), so that the rows, their ids and their order are the same on every run.

`COMBINATIONS=N` (the environment, read at collection) keeps the first N rows, which cover the most pairs:
`make check` runs a few, `make test` all of them.
"""

from __future__ import annotations

import copy
import itertools
import os
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import SECURE_STACK_VARIABLES, STACK_VARIABLES, install_asyncapi_parser
from tests.patterns import knowledge
from tools.render import REPO, render, variant_answers, variant_names

QUESTIONS: dict[str, Any] = yaml.safe_load((REPO / "copier.yml").read_text())


def choices(question: str) -> tuple[str, ...]:
    """The values copier.yml offers for `question`, its default first: a choice added there is covered here."""
    offered = tuple(QUESTIONS[question]["choices"].values())
    default = QUESTIONS[question]["default"]
    return (default, *(value for value in offered if value != default))


GUARANTEES = ("at-least-once", "exactly-once", "at-most-once")
"""The order the rows were built and proven in; `test_the_factors_are_the_answers_copier_offers` keeps it whole."""
PATTERN_NAMES = tuple(QUESTIONS["patterns"]["choices"].values())
# What each pattern asks of the spec, refuses and runs where: tests/patterns/<name>/answers.py.
PATTERNS = knowledge("answers", PATTERN_NAMES)
NEEDS_A_CONSUMED_TOPIC = [name for name, pattern in PATTERNS.items() if pattern.NEEDS_A_CONSUMED_TOPIC]
# Each answer (or shape of the spec) and its values; the first value of each is the template's default.
FACTORS: dict[str, tuple[Any, ...]] = {
    "delivery_guarantee": GUARANTEES,
    "security": choices("security"),
    "kafka_client": choices("kafka_client"),
    **dict.fromkeys(PATTERN_NAMES, (False, True)),
    "schema_subject_strategy": choices("schema_subject_strategy"),
    "schema_compatibility": choices("schema_compatibility"),
    "consumes": (True, False),  # False: the orders topic is only published (a producer-only service, without a queue)
    "queue": (False, True),  # True: a topic of tasks consumed as a queue (a share group) besides
    "events": ("several", "one"),  # event types per topic
}
Row = dict[str, Any]
Pair = tuple[tuple[str, Any], tuple[str, Any]]


def allowed(row: Mapping[str, Any]) -> bool:
    """Whether a (partial) row is a combination the template serves; the others are refused (see REFUSALS)."""
    # The topic strategy gives every type on a topic one subject: one type per topic only.
    if row.get("schema_subject_strategy") == "topic" and row.get("events") == "several":
        return False
    # Some patterns run on the runner of the spec's consumed topics (change data capture, the fan-out channels).
    if row.get("consumes") is False and any(row.get(name) is True for name in NEEDS_A_CONSUMED_TOPIC):
        return False
    # A queue is taken at least once (a share group has no transactions), and only librdkafka has a share consumer.
    if row.get("queue") is True and (
        row.get("delivery_guarantee", "at-least-once") != "at-least-once"
        or row.get("kafka_client", "confluent-kafka") != "confluent-kafka"
    ):
        return False
    # A service that consumes nothing is asked for no delivery guarantee: it renders with the default.
    return not (row.get("consumes") is False and row.get("delivery_guarantee", GUARANTEES[0]) != GUARANTEES[0])


def all_pairs() -> set[Pair]:
    names = list(FACTORS)
    return {
        ((a, x), (b, y))
        for a, b in itertools.combinations(names, 2)
        for x in FACTORS[a]
        for y in FACTORS[b]
        if allowed({a: x, b: y})
    }


def pairs_of(row: Mapping[str, Any]) -> set[Pair]:
    names = [name for name in FACTORS if name in row]
    return {((a, row[a]), (b, row[b])) for a, b in itertools.combinations(names, 2)}


def covering_array() -> list[Row]:
    """Rows that together hold every allowed pair, greedily: few rows, the same ones on every run."""
    uncovered = all_pairs()
    order = {pair: index for index, pair in enumerate(sorted(uncovered, key=repr))}
    rows: list[Row] = []
    while uncovered:
        (a, x), (b, y) = min(uncovered, key=order.__getitem__)
        row: Row = {a: x, b: y}
        for name in FACTORS:
            if name in row:
                continue
            candidates = [value for value in FACTORS[name] if allowed({**row, name: value})]
            row[name] = max(candidates, key=lambda value: len(pairs_of({**row, name: value}) & uncovered))
        rows.append({name: row[name] for name in FACTORS})
        uncovered -= pairs_of(row)
    return rows


def spec(row: Mapping[str, Any]) -> dict[str, Any]:
    """One topic of orders (one event type, or three), consumed or not, with what each chosen pattern needs."""
    events: list[dict[str, Any]] = [
        {
            "name": "OrderPlaced",
            "doc": "A customer placed an order.",
            "fields": [
                {"name": "order_id", "type": "string", "doc": "Identifier of the order."},
                {"name": "amount_cents", "type": "long"},
                {"name": "placed_at", "type": "timestamp"},
                {"name": "note", "type": "string", "optional": True},
            ],
        }
    ]
    if row["events"] == "several":
        events += [
            {
                "name": "OrderShipped",
                "fields": [{"name": "order_id", "type": "string"}, {"name": "express", "type": "boolean"}],
            },
            {
                "name": "OrderCancelled",
                "fields": [{"name": "order_id", "type": "string"}, {"name": "refund", "type": "double"}],
            },
        ]
    result: dict[str, Any] = {
        "consumer_group": "order-workers",
        "topics": [
            {"name": "orders", "key": "order_id", "partitions": 3, "consumed": row["consumes"], "events": events}
        ],
    }
    if row["queue"]:
        task = {"name": "task_id", "type": "string", "doc": "Identifier of the task."}
        result["topics"].append(
            {
                "name": "order.tasks",
                "key": "task_id",
                "partitions": 2,
                "delivery": "queue",
                "events": [{"name": "TaskSubmitted", "fields": [task, {"name": "prompt", "type": "string"}]}],
            }
        )
    for name, pattern in PATTERNS.items():
        section = pattern.section("orders") if row[name] else None
        if section is not None:
            result[name] = section
    return result


def answers(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "project_name": "order-service",
        **({"delivery_guarantee": row["delivery_guarantee"]} if row["consumes"] or row["queue"] else {}),
        "kafka_client": row["kafka_client"],
        "security": row["security"],
        "patterns": [name for name in PATTERN_NAMES if row[name]],
        "schema_subject_strategy": row["schema_subject_strategy"],
        "schema_compatibility": row["schema_compatibility"],
        "spec": spec(row),
    }


def row_id(index: int, row: Mapping[str, Any]) -> str:
    patterns = "+".join(name for name in PATTERN_NAMES if row[name]) or "plain"
    side = "consumer" if row["consumes"] else "producer"
    client = "librdkafka" if row["kafka_client"] == "confluent-kafka" else row["kafka_client"]
    return (
        f"c{index:02d}-{row['delivery_guarantee']}-{row['security']}-{client}-{patterns}-"
        f"{row['schema_subject_strategy']}-{row['schema_compatibility']}-{side}{'+queue' if row['queue'] else ''}-"
        f"{row['events']}"
    )


ROWS = covering_array()
KEPT = ROWS[: int(os.environ["COMBINATIONS"])] if os.environ.get("COMBINATIONS") else ROWS


def test_the_factors_are_the_answers_copier_offers() -> None:
    assert set(GUARANTEES) == set(choices("delivery_guarantee"))
    assert GUARANTEES[0] == QUESTIONS["delivery_guarantee"]["default"]


def test_the_rows_cover_every_allowed_pair() -> None:
    covered = set().union(*(pairs_of(row) for row in ROWS))
    assert covered == all_pairs()
    assert all(allowed(row) for row in ROWS)
    # Every value of every answer is in some row, and the array is a fraction of the whole space.
    assert {name: {row[name] for row in ROWS} for name in FACTORS} == {name: set(FACTORS[name]) for name in FACTORS}
    assert len(ROWS) < 40


def run(command: list[str], cwd: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    # No stack settings leak in: the unit tests need no broker.
    clean = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", *SECURE_STACK_VARIABLES, *STACK_VARIABLES}}
    return subprocess.run(
        command, cwd=cwd, env=clean | dict(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


@pytest.fixture(scope="session")
def shared(tmp_path_factory: pytest.TempPathFactory, mypy_cache: str) -> dict[str, str]:
    """What the rows one worker renders one after another share, so that each installs and type-checks only what
    differs: one virtual environment (`uv sync` makes it exactly the row's, its own package included) and the
    worker's mypy cache. A user's fresh .venv holds the same packages."""
    folder = tmp_path_factory.mktemp("shared")
    return {"UV_PROJECT_ENVIRONMENT": str(folder / "venv"), "MYPY_CACHE_DIR": mypy_cache}


def checks() -> Iterator[list[str]]:
    """What a user's `make install lint typecheck test-unit` runs after `uv sync` and the AsyncAPI parser's install,
    in order."""
    yield ["uv", "run", "ruff", "format", "--check", "--diff", "."]
    yield ["uv", "run", "ruff", "check", "."]
    yield ["uv", "run", "mypy"]
    yield ["uv", "run", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not integration", "tests/unit"]


@pytest.mark.parametrize("row", KEPT, ids=[row_id(index, row) for index, row in enumerate(KEPT, 1)])
def test_a_combination_renders_a_project_that_passes_its_checks_and_unit_tests(
    row: Row, tmp_path: Path, shared: dict[str, str], installed_parsers: Path
) -> None:
    dest = render(answers(row), tmp_path / "order-service")
    synced = run(["uv", "sync", "--quiet"], dest, shared)
    assert synced.returncode == 0, f"`uv sync` exited {synced.returncode}:\n{synced.stdout}"
    install_asyncapi_parser(dest, installed_parsers)
    failures = []
    for command in checks():
        result = run(command, dest, shared)
        if result.returncode != 0:
            tail = "\n".join(result.stdout.splitlines()[-60:])
            failures.append(f"`{' '.join(command)}` exited {result.returncode}:\n{tail}")
    assert not failures, "\n\n".join(failures)


def several_events_on_the_topic_strategy() -> dict[str, Any]:
    row = {**ROWS[0], "events": "several", "schema_subject_strategy": "topic"}
    return answers(row)


def pattern_without_its_spec(name: str) -> dict[str, Any]:
    data = answers({**ROWS[0], **{pattern: pattern == name for pattern in PATTERN_NAMES}})
    data["spec"].pop(name, None)
    return data


def spec_without_its_pattern(name: str) -> dict[str, Any]:
    data = answers({**ROWS[0], **{pattern: pattern == name for pattern in PATTERN_NAMES}})
    data["patterns"] = []
    return data


def without_a_consumed_topic(pattern: str) -> dict[str, Any]:
    data = answers({**ROWS[0], pattern: True})
    data["spec"]["topics"][0]["consumed"] = False
    return data


# The combinations outside `allowed`, or answers that contradict each other: (answers, question, advice).
# Each pattern names its refusals by the function above that builds their answers.
REFUSED_ANSWERS = {
    "pattern_without_its_spec": pattern_without_its_spec,
    "spec_without_its_pattern": spec_without_its_pattern,
    "without_a_consumed_topic": without_a_consumed_topic,
}
REFUSALS = [
    (several_events_on_the_topic_strategy(), "schema_subject_strategy", "type topic-record (or record) instead"),
    *(
        (REFUSED_ANSWERS[kind](name), "patterns", advice)
        for name, pattern in PATTERNS.items()
        for kind, advice in pattern.REFUSALS.items()
    ),
]


@pytest.mark.parametrize(("data", "question", "advice"), REFUSALS, ids=[r[2][:45] for r in REFUSALS])
def test_a_combination_the_template_cannot_serve_is_refused_with_advice(
    data: dict[str, Any], question: str, advice: str, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=f"question '{question}'") as refused:
        render(copy.deepcopy(data), tmp_path / "out")
    assert advice in str(refused.value)
    assert not (tmp_path / "out" / "src").exists(), "nothing is rendered from a refused answer"


# Where a pair of (guarantee, security, client, pattern) values runs against the real broker other than in a
# variant's own suite. A value added to copier.yml makes new pairs: each must land in a variant's suite or here.
CHART_PROCESSES = (
    "test_chart_processes.py (tests/deploy/, tests/patterns/database/) runs the chart's Deployments, hooks and "
    "KafkaConnect as processes"
)
LIBRDKAFKA_CHAOS = "tests/chaos/test_chaos.py runs the chaos rows of both clients (the librdkafka lanes)"
REAL_STACK_ELSEWHERE: dict[frozenset[tuple[str, Any]], str] = {
    frozenset({("delivery_guarantee", "exactly-once"), ("security", "mtls")}): f"{CHART_PROCESSES} (agent-patterns)",
    **{
        frozenset({("kafka_client", "confluent-kafka"), other}): f"{LIBRDKAFKA_CHAOS}: {row}"
        for other, row in (
            (("delivery_guarantee", "at-most-once"), "at-most-once, hostile records at-most-once"),
            (("outbox", True), "outbox, postgres restart"),
            (("cdc", True), "cdc"),
            (("audit", True), "hostile records patterns"),
            (("saga", True), "saga, hostile records patterns"),
        )
    },
    **{
        frozenset({other, (name, True)}): f"{CHART_PROCESSES} ({where})"
        for name, pattern in PATTERNS.items()
        for other, where in pattern.CHART_PROCESSES_RUNS.items()
    },
}


def variant_pairs(answers: Mapping[str, Any]) -> set[frozenset[tuple[str, Any]]]:
    """The (guarantee, security, client, pattern) pairs a variant's suite runs on the real broker: its guarantee only
    when it consumes (a producer-only service is asked none)."""
    values: list[tuple[str, Any]] = [("security", answers.get("security", QUESTIONS["security"]["default"]))]
    values.append(("kafka_client", answers.get("kafka_client", QUESTIONS["kafka_client"]["default"])))
    values += [(pattern, True) for pattern in answers.get("patterns", [])]
    topics = answers.get("spec", {}).get("topics")
    if topics is None or any(topic.get("consumed", True) for topic in topics):  # the default spec consumes
        values.append(("delivery_guarantee", answers.get("delivery_guarantee", GUARANTEES[0])))
    return {frozenset(pair) for pair in itertools.combinations(values, 2)}


def test_every_pair_of_guarantee_security_client_and_pattern_runs_on_the_real_stack_or_says_why_not() -> None:
    values: list[tuple[str, Any]] = [("delivery_guarantee", g) for g in GUARANTEES]
    values += [("security", s) for s in choices("security")] + [(pattern, True) for pattern in PATTERN_NAMES]
    values += [("kafka_client", c) for c in choices("kafka_client")]
    wanted = {frozenset(pair) for pair in itertools.combinations(values, 2) if len({name for name, _ in pair}) == 2}
    wanted = {pair for pair in wanted if not {name for name, _ in pair} <= set(PATTERN_NAMES)}
    in_suites = set().union(*(variant_pairs(variant_answers(name)) for name in variant_names())) & wanted
    assert wanted - in_suites - set(REAL_STACK_ELSEWHERE) == set(), "pairs that run nowhere on the real broker"
    assert not in_suites & set(REAL_STACK_ELSEWHERE), "a pair a variant's suite runs is still listed as elsewhere"
