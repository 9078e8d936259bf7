"""What `doctor` concludes about the consumer group: lag per partition over a window, judged like Burrow's consumer
status rules, hot keys, and rebalancing storms.

  OK       lag was zero at some point, or the consumer keeps up (committed offset moving, lag not rising)
  WARNING  the committed offset moves, but the lag rose in every interval: the consumer falls behind
  STALL    a member owns the partition, yet its committed offset did not move while records wait
  STOP     records wait and no member of the group owns the partition: nothing reads it, nothing commits
"""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

from .diagnosis import Finding, Severity

Status = Literal["OK", "WARNING", "STALL", "STOP"]

HOT_KEY_SHARE = 0.5
"""A key holding at least this share of a partition's backlog explains its lag."""
STORM_CHURN = 3
"""Members joining or leaving within one window, past which the group is storming."""


@dataclass(frozen=True)
class OffsetSample:
    at: float
    committed: int | None
    """None while the group never committed on the partition: it would start at `start`."""
    end: int
    start: int = 0

    @property
    def lag(self) -> int:
        return max(self.end - (self.start if self.committed is None else self.committed), 0)


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    status: Status
    lag: int
    committed: int | None
    end: int
    lag_change: int
    """How much the lag grew (positive) or shrank over the window."""
    owner: str | None
    hot_key: str | None = None
    hot_key_share: float = 0.0

    @property
    def name(self) -> str:
        return f"{self.topic}[{self.partition}]"


def partition_status(samples: list[OffsetSample], owned: bool) -> Status:
    """Burrow's rules over one partition's samples, oldest first."""
    lags = [sample.lag for sample in samples]
    if not samples:
        return "OK"
    if not owned and lags[-1] > 0:
        return "STOP"  # records wait and nobody will ever read them, however recently the lag was zero
    if min(lags) == 0:
        return "OK"
    if samples[0].committed == samples[-1].committed:
        return "STALL"
    if len(lags) > 1 and all(later > earlier for earlier, later in pairwise(lags)):
        return "WARNING"
    return "OK"


def judge_partition(topic: str, partition: int, samples: list[OffsetSample], owner: str | None) -> PartitionLag:
    last = samples[-1]
    return PartitionLag(
        topic=topic,
        partition=partition,
        status=partition_status(samples, owner is not None),
        lag=last.lag,
        committed=last.committed,
        end=last.end,
        lag_change=last.lag - samples[0].lag,
        owner=owner,
    )


def hot_key(keys: Sequence[bytes | None]) -> tuple[str | None, float]:
    """The most frequent key of a backlog sample and its share, when it holds HOT_KEY_SHARE or more of it."""
    if len(keys) < 10:
        return None, 0.0
    key, count = Counter(keys).most_common(1)[0]
    share = count / len(keys)
    if share < HOT_KEY_SHARE or key is None:
        return None, share
    return key.decode(errors="replace"), share


def lag_finding(partitions: list[PartitionLag], group: str, worker: str) -> Finding:
    total = sum(p.lag for p in partitions)
    bad = [p for p in partitions if p.status != "OK"]
    slowest = sorted(partitions, key=lambda p: p.lag, reverse=True)[:5]
    table = [f"{'partition':<28} {'status':<8} {'lag':>8} {'committed':>10} {'end':>10} {'change':>8}  owner"]
    for p in slowest:
        committed = "-" if p.committed is None else str(p.committed)
        change = f"{p.lag_change:+d}"
        table.append(f"{p.name:<28} {p.status:<8} {p.lag:>8} {committed:>10} {p.end:>10} {change:>8}  {p.owner or '-'}")
    hot = [p for p in bad if p.hot_key is not None]
    hot_lines = [
        f"hot key: {p.hot_key!r} is {p.hot_key_share:.0%} of the backlog of {p.name}: one key's events stay on one "
        "partition, in order, so one consumer works through them one by one"
        for p in hot
    ]
    if not bad:
        return Finding("lag", "ok", f"lag: group {group} keeps up ({total} records behind in all)", details=table)
    worst: Status = max((p.status for p in bad), key=["OK", "WARNING", "STALL", "STOP"].index)
    names = ", ".join(p.name for p in bad[:6]) + (" ..." if len(bad) > 6 else "")
    if worst == "STOP":
        title = f"lag STOP: {total} records wait and no consumer of group {group} reads {names}"
        why = (
            "The group has no member that owns these partitions: the service's consumer is not running (stopped, "
            "crashed, or scaled to zero), so nothing is processed and nothing is committed."
        )
        do = (
            f"Start the consumer ({worker}, or the web app with CONSUMER_ENABLED=true); on Kubernetes check the "
            "worker Deployment's pods (kubectl get pods, kubectl logs)."
        )
    elif worst == "STALL":
        title = f"lag STALL: the committed offsets of {names} do not move while {total} records wait"
        why = (
            "A member owns these partitions, but it finished no record during the window: a handler that hangs, or "
            "a message it keeps retrying (a poison message, or a dependency that is down); every message behind it "
            "waits."
        )
        do = (
            "Read the service's log for 'attempt N failed' or a handler that never returns; fix the handler or its "
            "dependency. Lower HANDLER_MAX_ATTEMPTS / HANDLER_RETRY_BACKOFF_SECONDS so that a message that cannot "
            "succeed reaches the dead-letter topic sooner."
        )
    else:
        title = f"lag WARNING: group {group} falls behind on {names} ({total} records, growing)"
        why = "The consumer makes progress, but records arrive faster than it processes them."
        do = (
            "Add consumers (replicas, up to the partition count), make the handler faster, or add partitions; with "
            "KEDA, lower autoscaling.keda.lagThreshold."
        )
    if hot:
        why += " A hot key explains it: its events all go to one partition, which no extra consumer can share."
        do += " For a hot key: spread its work (a finer key), or make its handler cheaper; more replicas will not help."
    severity: Severity = "warning" if worst == "WARNING" else "error"
    return Finding("lag", severity, title, why, do, table + hot_lines)


@dataclass(frozen=True)
class Member:
    member_id: str
    client_id: str
    client_host: str


@dataclass(frozen=True)
class GroupSample:
    at: float
    state: str
    members: list[Member]


REBALANCING = {"PreparingRebalance", "CompletingRebalance"}


@dataclass(frozen=True)
class SessionTimeout:
    """How long a member's heartbeats may stop before the group expels it, as the client's group protocol sets it:
    the client under the classic protocol, the broker (and the group's own config) under KIP-848."""

    described: str
    """The setting and its value, as the finding names it."""
    to_raise: str
    """The advice that raises it."""


def group_finding(
    samples: list[GroupSample], group: str, max_records: int, session: SessionTimeout, max_poll_interval_ms: int
) -> Finding:
    """A storm: members keep joining and leaving, or the group is seldom stable, over the window."""
    seen: list[str] = []
    for sample in samples:
        seen += [m.member_id for m in sample.members if m.member_id not in seen]
    first = {m.member_id for m in samples[0].members} if samples else set()
    last = {m.member_id for m in samples[-1].members} if samples else set()
    joined = [m for m in seen if m not in first]
    left = [m for m in seen if m not in last]
    rebalancing = sum(1 for s in samples if s.state in REBALANCING)
    states = " -> ".join(dict.fromkeys(s.state for s in samples)) or "unknown"
    span = samples[-1].at - samples[0].at if samples else 0.0
    details = [
        f"states over {span:.0f} s: {states}; {rebalancing} of {len(samples)} samples rebalancing",
        f"members now: {len(samples[-1].members) if samples else 0}; joined: {len(joined)}, left: {len(left)}",
    ]
    churn = len(joined) + len(left)
    storming = churn >= STORM_CHURN or (rebalancing >= 2 and rebalancing * 2 >= len(samples))
    if not storming:
        state = samples[-1].state if samples else "unknown"
        return Finding("group", "ok", f"group {group}: {state}, no rebalancing storm", details=details)
    clients = [{(m.client_id, m.client_host) for m in s.members} for s in samples]
    processes = set().union(*clients) if clients else set()
    restarting = len(processes) > max(len(c) for c in clients)
    if restarting:
        why = (
            "New consumer processes keep joining and old ones leaving: members restart (a crash loop, a rollout, "
            "or autoscaling that flaps)."
        )
        do = (
            "Check restarts (kubectl get pods: RESTARTS, kubectl logs --previous) and the liveness probe; with KEDA, "
            "raise autoscaling.keda.cooldownPeriod so replicas do not come and go."
        )
    else:
        why = (
            "The same consumers leave and rejoin under new member ids: a member that does not poll again within "
            f"max.poll.interval.ms ({max_poll_interval_ms} ms) is expelled, and so is one whose heartbeats stop "
            f"for {session.described}. This service's runner polls while handlers run "
            f"(up to {max_records} records per partition wait in memory), so a slow handler does not do it: a "
            "blocked event loop does, or a stalled process, or a consumer of the group that handles a batch "
            "before polling again. Each rejoin moves partitions: every member's under the classic protocol (eager), "
            "those that change owner under the consumer protocol (KIP-848)."
        )
        do = (
            "Find what blocks the event loop: a synchronous call in a handler (a blocking HTTP or database client, "
            "time.sleep, CPU-heavy work) must become an awaited async call or run in asyncio.to_thread. If "
            f"processes stall (CPU throttling, long GC), {session.to_raise}. Another program in the "
            "group that polls only between batches must poll while it works, or leave the group."
        )
    return Finding(
        "group",
        "error",
        f"rebalancing storm: group {group} had {churn} member joins/leaves in {span:.0f} s",
        why,
        do,
        details,
    )
