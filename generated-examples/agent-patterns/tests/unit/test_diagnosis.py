"""doctor's rules on samples, without a broker: Burrow's lag statuses, hot keys, replication, storms."""

from agent_ops.observability.consumer_diagnosis import (
    GroupSample,
    Member,
    OffsetSample,
    SessionTimeout,
    group_finding,
    hot_key,
    partition_status,
)
from agent_ops.observability.diagnosis import PartitionReplicas, replication_findings
from agent_ops.observability.doctor import session_timeout
from agent_ops.settings import Settings

SESSION = SessionTimeout("session.timeout.ms (45000 ms)", "raise CONSUMER_SESSION_TIMEOUT_MS")


def samples(*points: tuple[int | None, int]) -> list[OffsetSample]:
    return [OffsetSample(float(at), committed, end) for at, (committed, end) in enumerate(points)]


def test_lag_that_touched_zero_is_ok() -> None:
    assert partition_status(samples((5, 5), (5, 9)), owned=True) == "OK"


def test_lag_nobody_reads_is_stop() -> None:
    assert partition_status(samples((5, 9), (5, 20)), owned=False) == "STOP"
    assert partition_status(samples((None, 3), (None, 4)), owned=False) == "STOP"
    assert partition_status(samples((5, 5), (5, 9)), owned=False) == "STOP", "new records nobody will read"
    assert partition_status(samples((5, 9), (9, 9)), owned=False) == "OK"


def test_an_owned_partition_whose_commit_does_not_move_is_stalled() -> None:
    assert partition_status(samples((5, 9), (5, 9), (5, 12)), owned=True) == "STALL"


def test_moving_commits_with_lag_rising_every_interval_is_a_warning() -> None:
    assert partition_status(samples((5, 9), (7, 15), (9, 30)), owned=True) == "WARNING"


def test_moving_commits_with_lag_not_rising_every_interval_is_ok() -> None:
    assert partition_status(samples((5, 9), (8, 15), (15, 17)), owned=True) == "OK"


def test_a_key_holding_most_of_a_backlog_is_hot() -> None:
    assert hot_key([b"hot"] * 8 + [b"a", b"b"]) == ("hot", 0.8)
    assert hot_key([bytes([n]) for n in range(20)])[0] is None
    assert hot_key([b"hot"] * 3) == (None, 0.0), "too few records to say"


def test_replication_names_offline_under_min_isr_and_under_replicated_partitions_with_the_missing_brokers() -> None:
    partitions = [
        PartitionReplicas("t", 0, -1, [2, 3], []),
        PartitionReplicas("t", 1, 1, [1, 2, 3], [1]),
        PartitionReplicas("t", 2, 1, [1, 2, 3], [1, 3]),
        PartitionReplicas("t", 3, 1, [1, 2, 3], [1, 2, 3]),
    ]
    findings = replication_findings(partitions, live_brokers={1, 3}, min_isr={"t": 2})
    titles = [finding.title for finding in findings]
    assert [finding.severity for finding in findings] == ["error", "error", "warning"]
    assert titles[0].startswith("offline: 1 partition")
    assert titles[1].startswith("under min ISR: 1 partition")
    assert titles[2].startswith("under-replicated: 2 partition")
    assert "t[2] leader 1, replicas [1, 2, 3], missing from ISR: [2]" in findings[2].details
    assert "Broker(s) 2 are not in the cluster." in findings[2].why


def test_a_healthy_cluster_is_reported_healthy() -> None:
    (finding,) = replication_findings([PartitionReplicas("t", 0, 1, [1, 2], [2, 1])], {1, 2}, {"t": 2})
    assert finding.severity == "ok"


def members(*ids: str, host: str = "/10.0.0.1") -> list[Member]:
    return [Member(member_id, "svc", host) for member_id in ids]


def test_the_same_consumers_rejoining_is_a_storm_caused_by_slow_polls() -> None:
    history = [
        GroupSample(0, "Stable", members("a", "b")),
        GroupSample(5, "PreparingRebalance", members("b")),
        GroupSample(10, "Stable", members("b", "c")),
        GroupSample(15, "CompletingRebalance", members("c", "d")),
    ]
    finding = group_finding(history, "g", max_records=100, session=SESSION, max_poll_interval_ms=300_000)
    assert finding.severity == "error"
    assert finding.title.startswith("rebalancing storm: group g had")
    assert "max.poll.interval.ms (300000 ms)" in finding.why
    # The runner polls while handlers run: the advice is the event loop, never a smaller batch.
    assert "blocked event loop" in finding.why
    assert "asyncio.to_thread" in finding.do
    assert "CONSUMER_MAX_RECORDS" not in finding.do


def test_new_processes_coming_and_going_is_a_storm_of_restarts() -> None:
    history = [
        GroupSample(0, "Stable", members("a", host="/10.0.0.1")),
        GroupSample(5, "PreparingRebalance", members("b", host="/10.0.0.2")),
        GroupSample(10, "PreparingRebalance", members("c", host="/10.0.0.3")),
        GroupSample(15, "Stable", members("d", host="/10.0.0.4")),
    ]
    finding = group_finding(history, "g", max_records=100, session=SESSION, max_poll_interval_ms=300_000)
    assert finding.severity == "error"
    assert "members restart" in finding.why


def test_a_storm_of_stalled_members_names_the_session_timeout_the_group_protocol_uses() -> None:
    history = [
        GroupSample(0, "Stable", members("a", "b")),
        GroupSample(5, "PreparingRebalance", members("b")),
        GroupSample(10, "Stable", members("b", "c")),
        GroupSample(15, "CompletingRebalance", members("c", "d")),
    ]
    settings = Settings(kafka_consumer_group="g")
    finding = group_finding(history, "g", 100, session_timeout(settings), max_poll_interval_ms=300_000)
    # The classic protocol: the consumer sets it when it joins.
    assert f"session.timeout.ms ({settings.consumer_session_timeout_ms} ms)" in finding.why
    assert "raise CONSUMER_SESSION_TIMEOUT_MS" in finding.do


def test_a_stable_group_is_no_storm() -> None:
    history = [GroupSample(t, "Stable", members("a", "b")) for t in (0, 5, 10)]
    finding = group_finding(history, "g", max_records=100, session=SESSION, max_poll_interval_ms=300_000)
    assert finding.severity == "ok"
