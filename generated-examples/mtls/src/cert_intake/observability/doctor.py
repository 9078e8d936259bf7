"""`python -m cert_intake doctor [describe]`: reads the Kafka cluster and says what is wrong with this service's
topics, why, and what to do: offline, under-min-ISR and under-replicated partitions. Exit status: 0 healthy, 1 something
is wrong, 2 the cluster is unreachable.
"""

import argparse
import asyncio
import json
import sys
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, UnknownTopicOrPartitionError

from ..events.catalog import TOPICS
from ..settings import Settings, get_settings
from .diagnosis import Finding, PartitionReplicas, missing_topics_finding, replication_findings
from .offsets import OffsetReader

CHECKS = ("describe",)


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
    report = Report(None, settings.kafka_bootstrap_servers, 0.0)
    reader = OffsetReader(settings)
    await reader.start()
    try:
        topics = [topic.name for topic in TOPICS]
        replicas, missing = await describe_partitions(reader, topics)
        if "describe" in wanted:
            if missing:
                report.findings.append(missing_topics_finding(missing))
            live = {broker["node_id"] for broker in (await reader.admin.describe_cluster())["brokers"]}
            report.findings += replication_findings(replicas, live, await min_insync_replicas(reader, topics))
    finally:
        await reader.stop()
    return report


async def describe_partitions(reader: OffsetReader, topics: list[str]) -> tuple[list[PartitionReplicas], list[str]]:
    """Every partition of `topics`, and the topics that do not exist."""
    partitions: list[PartitionReplicas] = []
    missing: list[str] = []
    for topic in await reader.admin.describe_topics(topics):
        if topic["error_code"] == UnknownTopicOrPartitionError.errno:
            missing.append(topic["topic"])
        for p in topic["partitions"]:
            partitions.append(
                PartitionReplicas(topic["topic"], p["partition"], p["leader"], list(p["replicas"]), list(p["isr"]))
            )
    return partitions, missing


async def min_insync_replicas(reader: OffsetReader, topics: list[str]) -> dict[str, int]:
    wanted = [ConfigResource(ConfigResourceType.TOPIC, name, {"min.insync.replicas": None}) for name in topics]
    found: dict[str, int] = {}
    for response in await reader.admin.describe_configs(wanted):
        for _error, _message, _type, name, entries, *_ in response.resources:
            for entry in entries:
                if entry[0] == "min.insync.replicas":
                    found[name] = int(entry[1])
    return found


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
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    settings = get_settings()
    checks = CHECKS if args.check == "all" else (args.check,)
    try:
        report = asyncio.run(diagnose(settings, checks, 0.0, 0.0))
    except (KafkaError, OSError) as error:
        print(f"doctor: cannot read the cluster at {settings.kafka_bootstrap_servers}: {error!r}", file=sys.stderr)
        return 2
    print(json.dumps(report.as_dict(), indent=2) if args.json else render(report))
    return 0 if report.healthy else 1


if __name__ == "__main__":
    sys.exit(main())
