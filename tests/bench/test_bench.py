"""`make bench` runs end to end: on a tiny count, every row it promises lands in its JSON for both clients, the
clients are compared path by path, and the chart is drawn.

A program's smoke test, not a benchmark: no figure is asserted, only that each path was measured."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tools.bench import layers

ROWS = {
    ("java", "publish", layers.CEILING),
    *(
        (client, group, name)
        for client in layers.CLIENTS
        for group, name in (
            ("publish", f"{client} producer"),
            ("publish", "service EventPublisher"),
            ("http ingest", f"bare FastAPI + {client}"),
            ("http ingest", "service POST"),
            ("consume", f"{client} loop, commit after"),
            ("consume", "service runner (at-least-once)"),
            ("consume", f"{client} idempotent loop"),
            ("consume", "service transactional runner"),
        )
    ),
    ("aiokafka", "serde", "fastavro schemaless_writer"),
    ("aiokafka", "serde", "service AvroSerde"),
    *(("aiokafka", "http clients", f"{clients} clients") for clients in (1, 16, 64, 256)),
    *(("aiokafka", "worker processes", name) for name in ("1 worker", "2 workers", "4 workers")),
    *(
        ("librdkafka", "queue workers", name)
        for name in (
            "1 queue worker",
            "2 queue workers",
            "4 queue workers",
            "8 queue workers",
            "8 queue workers, tasks in batches",
        )
    ),
}
COMPARED = set(layers.PATHS)


def test_the_bench_measures_every_row(tmp_path: Path) -> None:
    assert shutil.which("wrk"), "the HTTP rows need wrk: apt-get install -y wrk"
    tiny = ["--events", "300", "--backlog", "600", "--seconds", "1", "--repetitions", "1", "--ceiling-events", "2000"]
    tiny += ["--tasks-per-worker", "3", "--task-ms", "20"]
    assert layers.main([*tiny, "--out", str(tmp_path)]) == 0
    written = json.loads((tmp_path / "bench.json").read_text())
    rows = written["rows"]
    assert {(row["client"], row["group"], row["name"]) for row in rows} == ROWS
    for row in rows:
        assert row["events_per_second"] > 0, row
        assert len(row["repetitions"]) == 1, row
    compared = [row for row in rows if row["baseline"] is not None]
    assert all(any(base["name"] == row["baseline"] for base in rows) for row in compared)
    queue = {row["name"]: row for row in rows if row["group"] == "queue workers"}
    assert queue["8 queue workers"]["baseline"] == "1 queue worker"
    assert queue["8 queue workers"]["goal"] == 3.0
    assert {entry["path"] for entry in written["comparisons"]} == COMPARED
    assert all(entry["ratios"] for entry in written["comparisons"])
    assert written["meta"]["machine"]["nproc"] >= 1
    assert (tmp_path / "bench.png").read_bytes().startswith(b"\x89PNG")
