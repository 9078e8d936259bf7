"""How the chaos table judges and shows the "queue tasks" row (tools/chaos/queue_tasks.py's result). Standard library
only."""

from __future__ import annotations

from typing import Any


def verdict(r: dict[str, Any]) -> list[str]:
    """Every task's output once or its dead letter once, none lost, each dead letter as its task's outcome says (after
    the delivery limit for a failing task, at once for a permanent one, never for one that succeeds), and at least
    one kill on a task's last allowed delivery, whose task was dead-lettered on a spare delivery."""
    if "failing" not in r:
        return []
    broken = []
    if r["lost"]:
        broken.append(f"{r['lost']} task(s) with neither output nor dead letter")
    if r["duplicates"]:
        broken.append(f"{r['duplicates']} output(s) or dead letter(s) more than one per task")
    if r["wrong_dead_letters"]:
        broken.append(f"{r['wrong_dead_letters']} dead letter(s) or output(s) against the task's outcome")
    if r["ok_dead_lettered"]:
        # Tasks are written one per record batch, so none waits out its lock in another worker's hands.
        broken.append(f"{r['ok_dead_lettered']} task(s) that succeed dead-lettered without running")
    if r["failing"] and not r["last_delivery_kills"]:
        broken.append("no kill landed on a task's last allowed delivery")
    if r["last_delivery_dead_lettered"] != r["last_delivery_kills"]:
        broken.append(
            f"{r['last_delivery_kills'] - r['last_delivery_dead_lettered']} task(s) killed on their last delivery "
            "not dead-lettered on a spare one"
        )
    return broken


def notes(r: dict[str, Any]) -> list[str]:
    if "failing" not in r:
        return []
    return [
        f"{r['workers']} workers on {r['partitions']} partitions; {r['succeeding']} succeeding, {r['failing']} failing "
        f"on every delivery, {r['permanent']} permanent; {r['dead_lettered']} dead letters ({r['spare_dead_letters']} "
        f"on a spare delivery after {r['delivery_limit']}, {r['ok_dead_lettered']} of succeeding tasks); "
        f"{r['handler_calls']} handler calls, {r['redeliveries']} redeliveries ({r['reruns_after_kills']} re-runs of "
        f"succeeding tasks after kills); {r['last_delivery_kills']} kill(s) on a last delivery, "
        f"{r['last_delivery_dead_lettered']} of those tasks dead-lettered on a spare"
    ]
