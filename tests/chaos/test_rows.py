"""The chaos table's plan and verdicts without a broker: each client answer gets its rows and lanes, and the scaling
row is judged by what each answer promises."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tests.chaos import test_chaos
from tools.chaos import clients, queue_figures, run, scaling_figures


def plan(client: str) -> list[run.Row]:
    return run.planned(argparse.Namespace(client=client, inputs=1000, kills=5, poison=100), Path("/chaos"))


def test_every_row_that_drives_a_service_runs_once_per_client_on_its_render() -> None:
    rows = plan("both")
    for name, project, extra in rows:
        client = clients.client_of(name)
        if project in run.BORROWED:
            assert client is None, f"{name}: no service of its own, so no client to name"
            continue
        assert client is not None, name
        assert extra["client"] == client, name
        assert project == clients.project(clients.unrendered(project), client), name
    by_client = {
        client: [clients.base(n) for n, _, _ in rows if clients.client_of(n) == client] for client in clients.CLIENTS
    }
    # The queue row's service renders with librdkafka only (a share group needs its share consumer).
    assert by_client["aiokafka"] == [name for name in by_client["confluent-kafka"] if name != "queue tasks"]
    assert "scaling slow handlers" in by_client["confluent-kafka"]
    alone = {client: [clients.base(n) for n, _, _ in plan(client)] for client in clients.CLIENTS}
    assert alone["aiokafka"] == [name for name in alone["confluent-kafka"] if name != "queue tasks"]


def test_the_queue_row_runs_on_librdkafka_alone_with_its_kills_at_every_input_count() -> None:
    assert "queue tasks" not in [clients.base(n) for n, _, _ in plan("aiokafka")]
    for inputs in (10_000, *test_chaos.INPUTS.values()):
        rows = run.planned(argparse.Namespace(client="both", inputs=inputs, kills=5, poison=100), Path("/chaos"))
        ((name, project, extra),) = [row for row in rows if clients.base(row[0]) == "queue tasks"]
        assert (name, project) == ("queue tasks (librdkafka)", "task-queue-librdkafka")
        assert extra["kills"] == 5
        assert extra["inputs"] == inputs // 2
    assert run.client_projects(["aiokafka", "confluent-kafka"]).keys() >= {"task-queue-librdkafka"}
    assert "task-queue" not in run.client_projects(["aiokafka", "confluent-kafka"])


def queue_result(**changed: Any) -> dict[str, Any]:
    result = {
        "lost": 0,
        "duplicates": 0,
        "wrong_dead_letters": 0,
        "ok_dead_lettered": 0,
        "failing": 20,
        "last_delivery_kills": 2,
        "last_delivery_dead_lettered": 2,
    }
    return result | changed


def test_the_queue_row_holds_no_loss_no_second_output_and_the_last_delivery_dead_lettered() -> None:
    assert queue_figures.verdict(queue_result()) == []
    assert queue_figures.verdict(queue_result(lost=1))
    assert queue_figures.verdict(queue_result(duplicates=1))
    assert queue_figures.verdict(queue_result(wrong_dead_letters=1))
    assert queue_figures.verdict(queue_result(ok_dead_lettered=1)), "a task that succeeds, dead-lettered unrun"
    assert queue_figures.verdict(queue_result(last_delivery_kills=0, last_delivery_dead_lettered=0))
    assert queue_figures.verdict(queue_result(last_delivery_dead_lettered=1)), "killed on its last delivery, lost"


def test_each_clients_rows_run_in_lanes_of_their_own() -> None:
    lanes = run.client_lanes(plan("both"), 2)
    assert len(lanes) == 4
    for lane, client in zip(lanes, ["aiokafka", "aiokafka", "confluent-kafka", "confluent-kafka"], strict=True):
        assert {clients.client_of(name) or "aiokafka" for name, _, _ in lane} == {client}


def scaled(**step: Any) -> dict[str, Any]:
    figures = {"abandoned_unmoved": 0, "abandoned_moved": 4, "rerun_unmoved": 0, "rerun_moved": 4}
    steps = [{"step": s, "unmoved": [0, 3]} | figures | step for s in ("1->3", "3->1")]
    return {"lost": 0, "lag": 0, "steps": steps}


def test_the_scaling_row_holds_librdkafka_to_keeping_unmoved_partitions_calls() -> None:
    assert scaling_figures.verdict(scaled(), "confluent-kafka") == []
    assert scaling_figures.verdict(scaled(abandoned_unmoved=1), "confluent-kafka")
    assert scaling_figures.verdict(scaled(rerun_unmoved=1), "confluent-kafka")
    assert scaling_figures.verdict(scaled(unmoved=[]), "confluent-kafka"), "nothing unmoved proves nothing"


def test_the_scaling_row_holds_aiokafka_to_losing_no_event_only() -> None:
    assert scaling_figures.verdict(scaled(abandoned_unmoved=6, rerun_unmoved=6), "aiokafka") == []
    for client in clients.CLIENTS:
        assert scaling_figures.verdict(scaled() | {"lost": 1}, client)
        assert scaling_figures.verdict(scaled() | {"lag": 1}, client)
