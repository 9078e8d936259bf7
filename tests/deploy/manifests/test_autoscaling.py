"""Autoscaling on consumer lag: KEDA's ScaledObject reaches Kafka from its own namespace, scales on every topic the
consumer reads, and falls back when the lag cannot be read; no lag, no KEDA."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from tests.deploy.manifests.helpers import (
    NAMESPACE,
    VARIANTS,
    Checked,
    answers_of,
    chart_of,
    helm_template,
    of_kind,
    only,
    service_config,
    service_port,
    the_deployment,
)

pytestmark = pytest.mark.k8s


@pytest.mark.parametrize("variant", VARIANTS)
def test_keda_reaches_kafka_by_its_fully_qualified_name_and_only_where_keda_is(
    variant: str, checked: Checked, helm: str
) -> None:
    out, _, _ = checked
    project = out / variant
    answers = answers_of(project)
    if not any(topic.get("consumed", True) for topic in answers["spec"]["topics"]):
        chart = str(chart_of(project))
        refused = subprocess.run(
            [helm, "template", "x", chart, "--set", "autoscaling.mode=keda"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert refused.returncode != 0
        assert "needs at least one topic with consumed: true" in refused.stderr, "no lag to scale on: said so"
        return
    bootstrap = f"{answers['kafka_cluster']}-kafka-bootstrap.{NAMESPACE}.svc:{service_port(project)}"
    with_keda = helm_template(helm, project, "--set", "autoscaling.mode=keda", "--api-versions", "keda.sh/v1alpha1")
    scaled = only(with_keda, "ScaledObject")
    assert scaled["spec"]["triggers"], "a kafka trigger per consumed topic"
    queues = [topic for topic in answers["spec"]["topics"] if topic.get("delivery") == "queue"]
    by_type = [trigger["type"] for trigger in scaled["spec"]["triggers"]]
    # A share group has no lag KEDA's kafka scaler reads: its workers' busy slots, from Prometheus, instead.
    assert by_type.count("prometheus") == (1 if queues else 0)
    for trigger in scaled["spec"]["triggers"]:
        if trigger["type"] == "prometheus":
            assert "messaging_kafka_queue_utilization" in trigger["metadata"]["query"]
            continue
        # The scaler runs in KEDA's namespace: a short Service name would not resolve there.
        assert trigger["metadata"]["bootstrapServers"] == bootstrap
        # As the service's consumer: a new group's backlog is lag to scale on.
        assert trigger["metadata"]["offsetResetPolicy"] == "earliest"
    assert service_config(with_keda)["data"]["KAFKA_BOOTSTRAP_SERVERS"] == bootstrap
    assert "replicas" not in the_deployment(with_keda)["spec"], "KEDA owns the replica count"

    without_keda = helm_template(helm, project, "--set", "autoscaling.mode=keda")
    assert not of_kind(without_keda, "ScaledObject")
    assert not of_kind(without_keda, "TriggerAuthentication")
    values = yaml.safe_load((chart_of(project) / "values.yaml").read_text())
    assert the_deployment(without_keda)["spec"]["replicas"] == values["autoscaling"]["minReplicas"]
