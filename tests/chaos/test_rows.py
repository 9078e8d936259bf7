"""The chaos table's plan and verdicts without a broker: each client answer gets its rows and lanes, and the scaling
row is judged by what each answer promises."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tools.chaos import clients, run, scaling_figures


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
    assert by_client["aiokafka"] == by_client["confluent-kafka"]
    assert "scaling slow handlers" in by_client["confluent-kafka"]
    assert [clients.base(n) for n, _, _ in plan("confluent-kafka")] == [clients.base(n) for n, _, _ in plan("aiokafka")]


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
