"""The monitoring objects: a ServiceMonitor for the API, a PodMonitor for every process without it, and the
PrometheusRule and PodMonitors of deploy/monitoring validated."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.manifests.helpers import (
    VARIANTS,
    Checked,
    consumes,
    container,
    helm_template,
    of_kind,
    only,
    pattern_components,
)

pytestmark = pytest.mark.k8s


@pytest.mark.parametrize("variant", VARIANTS)
def test_prometheus_scrapes_the_api_the_worker_and_the_pattern_processes_where_they_serve_metrics(
    variant: str, checked: Checked, helm: str
) -> None:
    out, _, _ = checked
    project = out / variant
    args = ["--set", "serviceMonitor.enabled=true"] + (["--set", "worker.enabled=true"] if consumes(project) else [])
    resources = helm_template(helm, project, *args)
    monitor = only(resources, "ServiceMonitor")
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= only(resources, "Service")["spec"]["selector"].items()
    # Every Deployment without the HTTP API (the worker, each pattern process) serves a metrics port, and exactly one
    # PodMonitor scrapes it there (the data pipelines' Kafka Connect has its own: test_kafka_connect_is_built_with_...).
    pod_monitors = [d for d in of_kind(resources, "PodMonitor") if not d["metadata"]["name"].endswith("-connect")]
    headless = [d for d in of_kind(resources, "Deployment") if "http" not in {p["name"] for p in container(d)["ports"]}]
    assert len(headless) == len(pod_monitors) == consumes(project) + len(pattern_components(project))
    for deployment in headless:
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        (pod_monitor,) = [d for d in pod_monitors if d["spec"]["selector"]["matchLabels"].items() <= labels.items()]
        (pod_endpoint,) = pod_monitor["spec"]["podMetricsEndpoints"]
        assert (pod_endpoint["port"], pod_endpoint["path"]) == ("metrics", "/metrics")
        assert [p["name"] for p in container(deployment)["ports"]] == ["metrics"]
    assert not of_kind(helm_template(helm, project), "ServiceMonitor"), "off by default: it needs the operator's CRDs"


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_monitoring_manifests_are_validated(variant: str, checked: Checked) -> None:
    _, _, report = checked
    (project,) = [r for r in report["results"] if Path(r["project"]).name == variant]
    assert project["kinds"].get("PrometheusRule") == 1, project["kinds"]
    assert project["kinds"].get("PodMonitor", 0) >= 1, "the brokers' PodMonitor in deploy/monitoring"
