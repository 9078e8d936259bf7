"""doctor's rules on samples, without a broker: replication."""

from cert_intake.observability.diagnosis import PartitionReplicas, replication_findings


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
