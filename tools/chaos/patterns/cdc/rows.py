"""The CDC's row of the chaos table (tools/chaos/run.py): a Debezium source through the stack's Connect worker,
killed -9 (connector.py, in this repository's interpreter: no service of its own, the data-pipelines variant's table
when that is rendered)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import Row

AFTER = "hostile records patterns"
DOC = {
    "cdc": """\
  cdc                      a Debezium source on a table of the stack's PostgreSQL: 500 rows snapshotted, then
                           10,000 inserts, updates and deletes written while the Connect worker is killed -9 three
                           times at planned counts of committed changes; every change on the topic (0 lost, counted by
                           librdkafka), duplicates and per-row reordering counted (see
                           tools/chaos/patterns/cdc/connector.py)
"""
}
PROJECTS = {"data-pipelines": "data-pipelines"}
BORROWED = {"debezium": "data-pipelines"}
"""The row captures the data-pipelines variant's table with its connector, when that is rendered."""
SCRIPTS: dict[str, Path] = {}
MODULES = {"cdc": "tools.chaos.patterns.cdc.connector"}
WEIGHT = {"cdc": 3.0}
ON_CONNECT = {"cdc"}
PLANNED_CRASHES: set[str] = set()


def rows(inputs: int, kills: int) -> list[Row]:
    # Change data capture through the real Connect worker and Debezium, the worker killed -9 mid-stream.
    return [("cdc", "debezium", {"kind": "cdc", "changes": inputs, "kills": 3, "state_dir": ""})]


def verdict(name: str, r: dict[str, Any]) -> list[str]:
    broken = []
    if name == "cdc":
        # Debezium is at least once after a crash: duplicates are counted, not a failure; a lost change is.
        if r["lost"] or r["unexpected"]:
            broken.append(f"{r['lost']} change(s) lost, {r['unexpected']} not written")
        if r["reordered"]:
            broken.append(f"{r['reordered']} row(s) whose changes arrived out of commit order")
    return broken


def notes(r: dict[str, Any]) -> list[str]:
    if "tombstones" not in r:
        return []
    return [
        f"{r['snapshot']} snapshot reads + {r['inputs'] - r['snapshot']} changes "
        f"({r['down_writes']} written while the worker was down), {r['tombstones']} tombstones, "
        f"{r['reordered']} reordered, streaming again {r['resumed_s']} s after each restart, "
        f"{'exactly.once.support=required' if r['exactly_once'] else 'at-least-once source'}, "
        f"{r['captured']} connector"
    ]
