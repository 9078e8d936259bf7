"""What `doctor` concludes from what it saw: pure functions over samples, so every rule is testable on its own.
Here: the findings, and replication (offline, under-min-ISR, under-replicated partitions)."""

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Severity = Literal["ok", "warning", "error"]


@dataclass
class Finding:
    check: str
    severity: Severity
    title: str
    why: str = ""
    do: str = ""
    details: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PartitionReplicas:
    topic: str
    partition: int
    leader: int
    replicas: list[int]
    isr: list[int]


def replication_findings(
    partitions: list[PartitionReplicas], live_brokers: set[int], min_isr: dict[str, int]
) -> list[Finding]:
    offline = [p for p in partitions if p.leader < 0]
    under = [p for p in partitions if p.leader >= 0 and len(p.isr) < len(p.replicas)]
    under_min = [p for p in partitions if p.leader >= 0 and len(p.isr) < min_isr.get(p.topic, 1)]
    down = sorted({r for p in partitions for r in p.replicas} - live_brokers)
    down_text = f" Broker(s) {', '.join(map(str, down))} are not in the cluster." if down else ""
    findings: list[Finding] = []
    if offline:
        findings.append(
            Finding(
                "describe",
                "error",
                f"offline: {len(offline)} partition(s) have no leader",
                "Every replica of these partitions is down: producing to them and consuming from them fails until one "
                f"comes back.{down_text}",
                "Bring the brokers holding them back (kubectl get pods -l strimzi.io/cluster=...; the broker's log). "
                "Only if a replica's disk is lost for good: unclean leader election, which loses the records the "
                "survivor lacks.",
                [f"{p.topic}[{p.partition}] replicas {p.replicas}, in sync: {p.isr or 'none'}" for p in offline],
            )
        )
    if under_min:
        findings.append(
            Finding(
                "describe",
                "error",
                f"under min ISR: {len(under_min)} partition(s) have fewer in-sync replicas than min.insync.replicas",
                "Writes with acks=all to them are refused (NotEnoughReplicas): the service answers POSTs with 503 "
                f"and its consumer cannot commit emitted events there.{down_text}",
                "Bring the missing brokers back; do not lower min.insync.replicas, which trades the durability "
                "promise for availability.",
                [
                    f"{p.topic}[{p.partition}] in sync {p.isr} < min.insync.replicas {min_isr.get(p.topic, 1)}"
                    for p in under_min
                ],
            )
        )
    if under:
        findings.append(
            Finding(
                "describe",
                "warning",
                f"under-replicated: {len(under)} partition(s) miss replicas from their in-sync set",
                "A follower is down or cannot keep up with its leader; another loss makes the partition "
                f"unavailable.{down_text}",
                "Find the broker(s) named below (down, disk full, network): once back they catch up on their own. "
                "If a live broker stays behind, check its disk and network throughput.",
                [
                    f"{p.topic}[{p.partition}] leader {p.leader}, replicas {p.replicas}, "
                    f"missing from ISR: {sorted(set(p.replicas) - set(p.isr))}"
                    for p in under
                ],
            )
        )
    if not findings:
        findings.append(
            Finding("describe", "ok", f"replication: all {len(partitions)} partitions have a leader and a full ISR")
        )
    return findings


def missing_topics_finding(missing: list[str]) -> Finding:
    return Finding(
        "describe",
        "error",
        f"missing topics: {', '.join(missing)}",
        "The service publishes to (or reads from) topics the cluster does not have: those sends fail.",
        "Apply deploy/strimzi/base/kafka-topics.yaml (Strimzi's KafkaTopics), or start the service once with "
        "KAFKA_CREATE_TOPICS=true in development.",
    )
