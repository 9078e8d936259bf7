"""The outbox's rows of the chaos table (tools/chaos/run.py): the data-pipelines service killed -9 while it takes
POSTs, and PostgreSQL stopped under it (service.py, in the project's interpreter)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import Row

AFTER = "cdc"
DOC = {
    "outbox": """\
  outbox                   the data-pipelines service (its migrations and connectors by its own commands) takes
                           10,000 POSTs while it is killed -9 three times and the Connect worker twice: every event
                           answered 202 on its topic (decoded by confluent-kafka with the registry), its consumer's
                           side effect once per event id (see tools/chaos/patterns/outbox/service.py)
""",
    "postgres restart": """\
  postgres restart         PostgreSQL stopped mid-stream: readiness 503 and POSTs answered 503 at once while it is
                           down; after its restart every accepted event on the topic, side effects once
The outbox rows run when tests/variants/data-pipelines.yml exists.
""",
}
PROJECTS = {"data-pipelines": "data-pipelines"}
"""The outbox and CDC service the outbox and PostgreSQL restart rows drive."""
BORROWED: dict[str, str] = {}
SERVICE = Path(__file__).resolve().with_name("service.py")
SCRIPTS = {"outbox": SERVICE, "postgres-restart": SERVICE}
MODULES: dict[str, str] = {}
WEIGHT = {"outbox": 3.0}
ON_CONNECT = {"outbox", "postgres restart"}
PLANNED_CRASHES = {"postgres restart"}
"""The consumer stops on a database outage and exits for its supervisor to restart it (crash-only): reported for the
PostgreSQL restart, where the outage was planned, a fault elsewhere."""


def rows(inputs: int, kills: int) -> list[Row]:
    return [
        # The outbox service: POSTs while it and the Connect worker are killed -9; events and side effects.
        (
            "outbox",
            "data-pipelines",
            {"kind": "outbox", "kills": 3, "service_kills": 3, "connect_kills": 2, "state_dir": ""},
        ),
        # PostgreSQL stopped mid-stream: readiness 503, POSTs 503 at once, nothing lost after its restart.
        (
            "postgres restart",
            "data-pipelines",
            {"kind": "postgres-restart", "kills": 1, "inputs": inputs // 2, "state_dir": ""},
        ),
    ]


def verdict(name: str, r: dict[str, Any]) -> list[str]:
    broken = []
    if name in ("outbox", "postgres restart"):
        if r["lost"] or r["accepted"] != r["inputs"]:
            broken.append(f"{r['lost']} of {r['accepted']} accepted event(s) lost")
        if r["effects"] != r["accepted"]:
            broken.append(f"side effects for {r['effects']} of {r['accepted']} events")
        if r["server_errors"]:
            broken.append(f"POSTs answered {r['server_errors']} (an outage must answer 503)")
        if r["header_mismatch"]:
            broken.append(f"{r['header_mismatch']} record(s) whose event_id header is not their event's id")
    if name == "outbox" and r["connect_kills"] < 2:
        broken.append(f"only {r['connect_kills']} of 2 Connect worker kills")
    if name == "postgres restart" and (
        r.get("ready_while_down") != [503] or r.get("post_while_down") != [503] or r["slowest_post_while_down_s"] > 10
    ):
        broken.append(
            f"while PostgreSQL was down: readiness {r.get('ready_while_down')}, POST {r.get('post_while_down')} "
            f"(slowest {r.get('slowest_post_while_down_s')} s)"
        )
    return broken


def notes(r: dict[str, Any]) -> list[str]:
    said = []
    if "accepted" in r:
        said.append(f"{r['accepted']} answered 202 ({r['unavailable']} answers 503 retried)")
        if r["connect_kills"]:
            said.append(
                f"Connect worker killed {r['connect_kills']}x, connectors running again {r['connect_resumed_s']} s "
                "after each"
            )
        said.append("events decoded by confluent-kafka with the registry")
    if "down_s" in r:
        said.append(
            f"PostgreSQL down {r['down_s']} s: readiness {r['ready_while_down']}, {r['probes']} POSTs answered "
            f"{r['post_while_down']} in <= {r['slowest_post_while_down_s']} s, "
            f"worker exited {r['crashes']}x on the outage (restarted)"
        )
    return said
