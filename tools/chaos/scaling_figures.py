"""How run.py judges and shows the "scaling slow handlers" row (tools/chaos/scaling.py). Standard library only.

What users rely on, by answer:
  librdkafka (cooperative, KIP-848)  a partition that stays with its worker through a scale step keeps its handler
                                     calls: none abandoned, none re-run; and no event lost.
  aiokafka (eager, classic protocol) every step revokes every partition, so in-flight calls running longer than
                                     CONSUMER_REVOKE_WAIT_SECONDS are abandoned and re-run on all of them: the
                                     figures are recorded, not judged (how many depends on where the calls stand
                                     when the step comes). What it promises is that none of that loses an event:
                                     every event has a finished handler call and the group's lag is 0.
"""

from __future__ import annotations

from typing import Any


def verdict(r: dict[str, Any], client: str | None) -> list[str]:
    broken = []
    if r["lost"] or r["lag"]:
        broken.append(f"{r['lost']} event(s) without a finished handler call, final lag {r['lag']}")
    if client == "confluent-kafka":
        for step in r["steps"]:
            if not step["unmoved"]:
                broken.append(f"{step['step']}: no partition stayed with its worker")
            if step["abandoned_unmoved"] or step["rerun_unmoved"]:
                broken.append(
                    f"{step['step']}: {step['abandoned_unmoved']} call(s) abandoned, {step['rerun_unmoved']} re-run "
                    "on partitions that did not move"
                )
    return broken


def notes(r: dict[str, Any]) -> list[str]:
    if "steps" not in r:
        return []
    return [
        f"handlers {r['handler_seconds']:.0f} s, {r['concurrency']} per partition at once, {r['partitions']} "
        f"partitions, workers 1->3->1; lag {r['lag']} (read by {r['counted_by']}); figures below"
    ]


def table(rows: list[tuple[str, dict[str, Any]]]) -> str:
    """One line per scale step of each scaling row: (row name, result)."""
    head = (
        "row",
        "step",
        "settled",
        "unmoved",
        "abandoned unmoved/moved",
        "re-run unmoved/moved",
        "longest gap unmoved/moved",
    )
    lines = [head]
    for name, r in rows:
        for step in r.get("steps", []):
            lines.append(
                (
                    name,
                    step["step"],
                    f"{step['settled_s']} s",
                    ",".join(map(str, step["unmoved"])) or "-",
                    f"{step['abandoned_unmoved']}/{step['abandoned_moved']}",
                    f"{step['rerun_unmoved']}/{step['rerun_moved']}",
                    f"{step['gap_unmoved_s']} s/{step['gap_moved_s']} s",
                )
            )
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in lines)
