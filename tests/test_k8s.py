"""The generated Kubernetes manifests: valid against real schemas, a checker that catches mistakes, least privilege.

These run tools/k8s/check.py (helm + kubeconform with Kubernetes and CRD schemas, see docs/kubernetes.md); its first
run installs the tools into ~/.cache/kafka-events, later runs reuse them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
VARIANTS = sorted(p.stem for p in (REPO / "tests" / "variants").glob("*.yml"))

pytestmark = pytest.mark.k8s

# Kinds every rendered project must have validated at least once (the chart is rendered under value sets that
# switch on the HPA and the ServiceMonitor too).
EXPECTED_KINDS = {
    "Kafka",
    "KafkaNodePool",
    "KafkaTopic",
    "KafkaUser",
    "Deployment",
    "Service",
    "ConfigMap",
    "PodDisruptionBudget",
    "ScaledObject",
    "TriggerAuthentication",
    "HorizontalPodAutoscaler",
    "ServiceMonitor",
}


def run_check(*args: str, report: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    proc = subprocess.run(
        [sys.executable, "-m", "tools.k8s.check", *args, "--report", str(report)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert report.exists(), f"check.py wrote no report (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc, json.loads(report.read_text())


@pytest.fixture(scope="session")
def checked(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str], dict[str, Any]]:
    """Every variant rendered (kept in a temporary folder) and checked once for the session."""
    out = tmp_path_factory.mktemp("k8s-variants")
    proc, report = run_check("--keep", str(out), report=out / "report.json")
    return out, proc, report


def test_variants_exist() -> None:
    assert VARIANTS, "tests/variants/*.yml holds no answers file"


def test_every_variant_passes_the_check(checked: tuple[Path, subprocess.CompletedProcess[str], dict[str, Any]]) -> None:
    _, proc, report = checked
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = {Path(r["project"]).name: r for r in report["results"]}
    assert sorted(results) == VARIANTS
    expected = EXPECTED_KINDS - set(report["skipped_kinds"])
    for name, result in results.items():
        assert result["errors"] == [], (name, result["errors"])
        missing = {kind for kind in expected if result["kinds"].get(kind, 0) < 1}
        assert not missing, f"{name}: no {sorted(missing)} validated; validated {result['kinds']}"
        assert result["summary"]["invalid"] == 0
        assert result["summary"]["errors"] == 0


@pytest.mark.parametrize("mistake", ["kafka-unknown-field", "deployment-wrong-type", "chart-bad-value"])
def test_a_wrong_manifest_fails_the_check(
    mistake: str, checked: tuple[Path, subprocess.CompletedProcess[str], dict[str, Any]], tmp_path: Path
) -> None:
    out, _, _ = checked
    project = tmp_path / "project"
    shutil.copytree(out / VARIANTS[0], project)
    if mistake == "kafka-unknown-field":
        path = project / "deploy" / "strimzi" / "dev" / "kafka.yaml"
        doc = yaml.safe_load(path.read_text())
        doc["spec"]["kafka"]["replicationFactor"] = 3  # not a field of Kafka.spec.kafka (it goes in config)
        path.write_text(yaml.safe_dump(doc))
        expect = ("Kafka/", "replicationFactor")
    elif mistake == "deployment-wrong-type":
        (path,) = project.glob("deploy/helm/*/templates/deployment.yaml")
        text = path.read_text()
        assert "containerPort: 8000" in text
        path.write_text(text.replace("containerPort: 8000", 'containerPort: "8000"'))
        expect = ("Deployment/", "containerPort")
    else:
        (path,) = project.glob("deploy/helm/*/values.yaml")
        values = yaml.safe_load(path.read_text())
        values["autoscaling"]["mode"] = "vpa"
        path.write_text(yaml.safe_dump(values))
        expect = ("helm", "autoscaling")
    proc, report = run_check("--dir", str(project), report=tmp_path / "report.json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (result,) = report["results"]
    assert any(all(word in error for word in expect) for error in result["errors"]), result["errors"]


def expected_acls(answers: dict[str, Any]) -> set[tuple[str, str, str, frozenset[str]]]:
    """What the service uses, from its answers: each topic and its DLQ, its group, its transactional ids."""
    rw = frozenset({"Write", "Read", "Describe"})
    acls = set()
    for topic in answers["spec"]["topics"]:
        acls.add(("topic", topic["name"], "literal", rw))
        acls.add(("topic", topic["name"] + ".dlq", "literal", rw))
    acls.add(("group", answers["spec"]["consumer_group"], "literal", frozenset({"Read"})))
    if answers["delivery_guarantee"] == "exactly-once":
        acls.add(("transactionalId", answers["k8s_name"] + "-", "prefix", frozenset({"Write", "Describe"})))
    return acls


@pytest.mark.parametrize("variant", VARIANTS)
def test_kafka_user_acls_are_exactly_what_the_service_uses(
    variant: str, checked: tuple[Path, subprocess.CompletedProcess[str], dict[str, Any]]
) -> None:
    out, _, _ = checked
    project = out / variant
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    (user,) = list(yaml.safe_load_all((project / "deploy" / "strimzi" / "base" / "kafka-user.yaml").read_text()))
    assert user["kind"] == "KafkaUser"
    assert user["metadata"]["name"] == answers["k8s_name"]
    assert user["spec"]["authentication"] == {"type": "scram-sha-512"}
    rendered = [
        (
            acl["resource"]["type"],
            acl["resource"]["name"],
            acl["resource"].get("patternType", "literal"),
            frozenset(acl["operations"]),
        )
        for acl in user["spec"]["authorization"]["acls"]
    ]
    assert len(rendered) == len(set(rendered)), "duplicate ACLs"
    assert set(rendered) == expected_acls(answers)
    for acl in user["spec"]["authorization"]["acls"]:
        assert acl.get("type", "allow") == "allow"
        assert "host" not in acl

    # The KafkaTopics are the same topics, and the chart autoscales on the consumed ones.
    topics = list(yaml.safe_load_all((project / "deploy" / "strimzi" / "base" / "kafka-topics.yaml").read_text()))
    names = {t["name"] for t in answers["spec"]["topics"]}
    assert {t["spec"]["topicName"] for t in topics} == names | {n + ".dlq" for n in names}
    (values_file,) = project.glob("deploy/helm/*/values.yaml")
    values = yaml.safe_load(values_file.read_text())
    assert values["kafka"]["user"] == answers["k8s_name"]
    assert values["kafka"]["consumerGroup"] == answers["spec"]["consumer_group"]
    assert [t["name"] for t in values["kafka"]["topics"]] == [t["name"] for t in answers["spec"]["topics"]]
