"""`python -m agent_ops doctor [lag|describe|group]`: reads the Kafka cluster and this service's consumer
group, and says what is wrong, why, and what to do. Exit status: 0 healthy, 1 something is wrong, 2 the cluster is
unreachable.

    doctor            everything below, over one window
    doctor lag        lag per partition over the window (Burrow's OK / WARNING / STALL / STOP), hot keys
    doctor describe   the service's topics: offline, under-min-ISR and under-replicated partitions
    doctor group      the group's state and membership churn over the window: rebalancing storms
"""

import argparse
import asyncio
import json
import sys
import textwrap
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..events.catalog import CONSUMED_TOPICS, TOPICS
from ..kafka.client import ERRORS, committed_reader
from ..kafka.port import Partition
from ..kafka.reading import POLL_TIMEOUT_MS
from ..settings import Settings, get_settings
from .consumer_diagnosis import (
    GroupSample,
    Member,
    OffsetSample,
    PartitionLag,
    SessionTimeout,
    group_finding,
    hot_key,
    judge_partition,
    lag_finding,
)
from .diagnosis import Finding, PartitionReplicas, missing_topics_finding, replication_findings
from .offsets import OffsetReader

CHECKS = ("lag", "describe", "group")
HOT_KEY_SAMPLE = 500


@dataclass
class Report:
    group: str | None
    bootstrap_servers: str
    window_seconds: float
    findings: list[Finding] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return all(finding.severity == "ok" for finding in self.findings)

    def as_dict(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy,
            "group": self.group,
            "bootstrap_servers": self.bootstrap_servers,
            "window_seconds": self.window_seconds,
            "findings": [finding.as_dict() for finding in self.findings],
        }


async def diagnose(settings: Settings, checks: Iterable[str], window: float, interval: float) -> Report:
    wanted = set(checks)
    group = settings.kafka_consumer_group
    report = Report(group, settings.kafka_bootstrap_servers, window if wanted & {"lag", "group"} else 0.0)
    reader = OffsetReader(settings)
    await reader.start()
    try:
        # A topic's dead letters are written only by the service's consumers: its user may not even see the dead
        # letters of a topic it only publishes to.
        topics = [topic.name for topic in TOPICS] + [topic.dead_letter for topic in TOPICS if topic.consumed]
        replicas, missing = await describe_partitions(reader, topics)
        if "describe" in wanted:
            if missing:
                report.findings.append(missing_topics_finding(missing))
            live = await reader.admin.brokers()
            report.findings += replication_findings(replicas, live, await min_insync_replicas(reader, topics))
        if wanted & {"lag", "group"}:
            consumed = {topic.name for topic in CONSUMED_TOPICS}
            partitions = [Partition(p.topic, p.partition) for p in replicas if p.topic in consumed]
            offsets, groups = await watch(reader, group, partitions, window, interval)
            if "lag" in wanted:
                owners = groups[-1][1]
                judged = [
                    judge_partition(tp.topic, tp.partition, offsets[tp], owners.get(tp)) for tp in sorted(partitions)
                ]
                judged = [await with_hot_key(settings, p) for p in judged]
                report.findings.append(lag_finding(judged, group, "python -m agent_ops worker"))
            if "group" in wanted:
                report.findings.append(
                    group_finding(
                        [sample for sample, _ in groups],
                        group,
                        settings.consumer_max_records,
                        session_timeout(settings),
                        settings.consumer_max_poll_interval_ms,
                    )
                )
    finally:
        await reader.stop()
    return report


async def describe_partitions(reader: OffsetReader, topics: list[str]) -> tuple[list[PartitionReplicas], list[str]]:
    """Every partition of `topics`, and the topics that do not exist."""
    described = await reader.admin.partitions(topics)
    partitions = [
        PartitionReplicas(p.topic, p.partition, p.leader, p.replicas, p.isr)
        for topic in topics
        for p in described.get(topic, [])
    ]
    return partitions, [topic for topic in topics if topic not in described]


async def min_insync_replicas(reader: OffsetReader, topics: list[str]) -> dict[str, int]:
    configs = await reader.admin.topic_config(topics, "min.insync.replicas")
    return {topic: int(value) for topic, value in configs.items()}


def session_timeout(settings: Settings) -> SessionTimeout:
    """The classic group protocol's: the consumer asks for it when it joins."""
    return SessionTimeout(
        f"session.timeout.ms ({settings.consumer_session_timeout_ms} ms)", "raise CONSUMER_SESSION_TIMEOUT_MS"
    )


GroupState = tuple[GroupSample, dict[Partition, str]]


async def watch(
    reader: OffsetReader, group: str, partitions: list[Partition], window: float, interval: float
) -> tuple[dict[Partition, list[OffsetSample]], list[GroupState]]:
    """Sample offsets and the group every `interval` seconds for `window` seconds (at least twice)."""
    offsets: dict[Partition, list[OffsetSample]] = {tp: [] for tp in partitions}
    groups: list[GroupState] = []
    started = time.monotonic()
    while True:
        now = time.monotonic()
        committed = await reader.committed(group)
        ends = await reader.ends(partitions)
        starts = await reader.beginnings(tp for tp in partitions if tp not in committed)
        for tp in partitions:
            offsets[tp].append(OffsetSample(now - started, committed.get(tp), ends.get(tp, 0), starts.get(tp, 0)))
        groups.append(await group_state(reader, group, now - started))
        if now - started >= window and len(groups) >= 2:
            return offsets, groups
        await asyncio.sleep(interval)


async def group_state(reader: OffsetReader, group: str, at: float) -> GroupState:
    described = await reader.admin.group(group)
    owners = {tp: f"{m.client_id}@{m.host}" for m in described.members for tp in m.partitions}
    members = [Member(m.member_id, m.client_id, m.host) for m in described.members]
    return GroupSample(at, described.state, members), owners


async def with_hot_key(settings: Settings, partition: PartitionLag) -> PartitionLag:
    """The partition, with the key that dominates the next records it has to process, if one does."""
    if partition.status == "OK" or partition.lag == 0:
        return partition
    tp = Partition(partition.topic, partition.partition)
    # Outside any group: without a commit it reads from the partition's first record, as the group would.
    consumer = committed_reader(settings, from_earliest=True, max_records=HOT_KEY_SAMPLE)
    await consumer.start()
    keys: list[bytes | None] = []
    try:
        consumer.assign([tp])
        if partition.committed is not None:
            consumer.seek(tp, partition.committed)
        async with asyncio.timeout(5):
            while len(keys) < min(HOT_KEY_SAMPLE, partition.lag):
                batch = await consumer.getmany(tp, timeout_ms=POLL_TIMEOUT_MS)
                keys += [record.key for record in batch.get(tp, [])][: HOT_KEY_SAMPLE - len(keys)]
    except TimeoutError:
        pass  # judge on what was read
    finally:
        await consumer.stop()
    key, share = hot_key(keys)
    if key is None:
        return partition
    return PartitionLag(**{**vars(partition), "hot_key": key, "hot_key_share": share})


UNREADABLE: tuple[type[Exception], ...] = (*ERRORS.any, OSError)
"""What the client raises when it cannot read the cluster."""

MARKS = {"ok": "[ OK ]", "warning": "[WARN]", "error": "[FAIL]"}


def render(report: Report) -> str:
    subject = f"group {report.group}" if report.group else "topics"
    watched = f", watched for {report.window_seconds:g} s" if report.window_seconds else ""
    lines = [f"doctor: {subject} on {report.bootstrap_servers}{watched}", ""]
    wrap = textwrap.TextWrapper(width=110, subsequent_indent=" " * 12)
    for finding in report.findings:
        lines.append(f"{MARKS[finding.severity]} {finding.title}")
        if finding.why:
            lines.append(wrap.fill(f"       why: {finding.why}"))
        if finding.do:
            lines.append(wrap.fill(f"       do:  {finding.do}"))
        lines += [f"       {detail}" for detail in finding.details]
        lines.append("")
    problems = [finding for finding in report.findings if finding.severity != "ok"]
    lines.append(f"{len(problems)} problem(s) found." if problems else "Healthy: nothing to do.")
    return "\n".join(lines)


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("check", nargs="?", choices=("all", *CHECKS), default="all", help="what to look at")
    parser.add_argument("--window", type=float, default=30.0, help="seconds to watch lag and the group (30)")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between samples (5)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    settings = get_settings()
    checks = CHECKS if args.check == "all" else (args.check,)
    try:
        report = asyncio.run(diagnose(settings, checks, args.window, args.interval))
    except UNREADABLE as error:
        print(f"doctor: cannot read the cluster at {settings.kafka_bootstrap_servers}: {error!r}", file=sys.stderr)
        return 2
    print(json.dumps(report.as_dict(), indent=2) if args.json else render(report))
    return 0 if report.healthy else 1


if __name__ == "__main__":
    sys.exit(main())
