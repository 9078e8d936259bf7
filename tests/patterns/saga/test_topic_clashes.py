"""The saga's topics against the other patterns': each pattern's check returns the topics it adds, so a pattern
checked later refuses a clash with them without naming the earlier pattern."""

from __future__ import annotations

from typing import Any

from extensions.kafka_events_spec import problems

SPEC: dict[str, Any] = {
    "consumer_group": "agent-task-workers",
    "topics": [
        {
            "name": "agent.tasks",
            "key": "task_id",
            "consumed": True,
            "events": [{"name": "TaskCreated", "fields": [{"name": "task_id", "type": "string"}]}],
        }
    ],
}
SAGA = {"name": "run", "steps": [{"name": "act"}]}
CUSTOMERS = {"table": "customers", "key": "id", "columns": [{"name": "id", "type": "long"}]}


def test_a_change_topic_may_not_be_a_sagas_topic() -> None:
    assert problems({**SPEC, "saga": SAGA, "cdc": {**CUSTOMERS, "topic": "saga.run.commands"}}) == [
        'spec.cdc.topic: the change topic "saga.run.commands" clashes with a topic of the spec or a dead-letter '
        "topic; name another, e.g. topic: customers.cdc."
    ]


def test_a_sagas_topic_may_not_be_the_audit_log() -> None:
    assert problems({**SPEC, "saga": SAGA, "audit": {"topic": "saga.run.state"}}) == [
        "spec.saga.name: the saga's topic saga.run.state is a topic of the spec already; type another saga name, "
        "e.g. run_saga."
    ]


def test_patterns_whose_topics_differ_pass() -> None:
    assert problems({**SPEC, "saga": SAGA, "audit": {"topic": "agent.audit"}, "cdc": CUSTOMERS}) == []
