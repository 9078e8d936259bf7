"""The checker: every variant's manifests (the Helm chart under several value sets, the Strimzi resources, the
monitoring objects) are valid against real Kubernetes and CRD schemas, and a wrong manifest fails the check."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.deploy.manifests.helpers import (
    VARIANTS,
    Checked,
    answers_of,
    run_check,
)

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
    "HorizontalPodAutoscaler",
    "ServiceMonitor",
}


# Scaling on consumer lag: only a service that consumes has lag, and only it gets them (and must).
LAG_SCALING_KINDS = {"ScaledObject", "TriggerAuthentication"}


def test_variants_exist() -> None:
    assert VARIANTS, "tests/variants/*.yml holds no answers file"


def test_every_variant_passes_the_check(checked: Checked) -> None:
    _, proc, report = checked
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = {Path(r["project"]).name: r for r in report["results"]}
    assert sorted(results) == VARIANTS
    for name, result in results.items():
        assert result["errors"] == [], (name, result["errors"])
        answers = answers_of(Path(result["project"]))
        consumes = any(topic.get("consumed", True) for topic in answers["spec"]["topics"])
        expected = (EXPECTED_KINDS | (LAG_SCALING_KINDS if consumes else set())) - set(report["skipped_kinds"])
        if answers.get("security", "none") == "none":
            # A service that does not authenticate has nothing for KEDA to authenticate with.
            expected -= {"TriggerAuthentication"}
        missing = {kind for kind in expected if result["kinds"].get(kind, 0) < 1}
        if not consumes:
            assert not LAG_SCALING_KINDS & set(result["kinds"]), f"{name} consumes nothing, yet scales on lag"
        assert not missing, f"{name}: no {sorted(missing)} validated; validated {result['kinds']}"
        assert result["summary"]["invalid"] == 0
        assert result["summary"]["errors"] == 0


@pytest.mark.parametrize("mistake", ["kafka-unknown-field", "deployment-wrong-type", "chart-bad-value"])
def test_a_wrong_manifest_fails_the_check(mistake: str, checked: Checked, tmp_path: Path) -> None:
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
