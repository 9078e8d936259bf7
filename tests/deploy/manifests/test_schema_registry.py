"""The schema registry: Apicurio probed where it answers, the hook Job that registers the schemas before the pods
start, and a registry that survives a drain and admits only the service's pods."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.deploy.manifests.helpers import (
    VARIANTS,
    Checked,
    answers_of,
    container,
    helm_template,
    of_kind,
    service_config,
    strimzi_docs,
    the_deployment,
)
from tools.render import render, variant_answers

pytestmark = pytest.mark.k8s


def probe_port(main: dict[str, Any], probe: dict[str, Any]) -> int:
    port = probe["httpGet"]["port"]
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in main["ports"] if p["name"] == port]
    return int(number)


@pytest.mark.parametrize("variant", VARIANTS)
def test_schema_registry_is_probed_on_apicurios_management_port(variant: str, checked: Checked) -> None:
    out, _, _ = checked
    (deployment,) = strimzi_docs(out / variant, "schema-registry/deployment.yaml")
    main = container(deployment)
    # Apicurio 3.3 serves /health/* on Quarkus's management interface (9000) only; 8080 answers them 404.
    for kind, path in [
        ("startupProbe", "/health/started"),
        ("livenessProbe", "/health/live"),
        ("readinessProbe", "/health/ready"),
    ]:
        probe = main[kind]
        assert probe["httpGet"]["path"] == path, kind
        assert probe_port(main, probe) == 9000, kind
    # Replaying the KafkaSQL journal can be slow: the startup probe allows minutes, not seconds.
    startup = main["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120
    (service,) = strimzi_docs(out / variant, "schema-registry/service.yaml")
    (api,) = service["spec"]["ports"]
    assert probe_port(main, {"httpGet": {"port": api["targetPort"]}}) == 8080


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_hook_job_registers_the_schemas_before_the_pods_start(variant: str, checked: Checked, helm: str) -> None:
    out, _, _ = checked
    project = out / variant
    answers = answers_of(project)
    resources = helm_template(helm, project, "--api-versions", "keda.sh/v1alpha1")
    (job,) = schema_jobs(resources)
    hooks = set(job["metadata"]["annotations"]["helm.sh/hook"].split(","))
    assert hooks == {"pre-install", "pre-upgrade"}
    (main,) = job["spec"]["template"]["spec"]["containers"]
    assert main["command"] == ["python", "-m", answers["package_name"], "schemas", "register"]
    assert main["image"] == container(the_deployment(resources))["image"]
    env = {item["name"]: item["value"] for item in main["env"]}
    config = service_config(resources)["data"]
    assert config["SCHEMA_AUTO_REGISTER"] == "false"
    # The service and the Job agree on where the schemas live and how they evolve: the project's answers.
    for name in ("SCHEMA_REGISTRY_URL", "SCHEMA_SUBJECT_STRATEGY", "SCHEMA_COMPATIBILITY"):
        assert env[name] == config[name], name
    assert env["SCHEMA_COMPATIBILITY"] == answers["schema_compatibility"]
    assert env["SCHEMA_SUBJECT_STRATEGY"] == answers["schema_subject_strategy"]
    # The command exists in the generated service.
    main_py = (project / "src" / answers["package_name"] / "__main__.py").read_text()
    assert '["schemas"]' in main_py
    off = helm_template(helm, project, "--set", "schemaRegistry.registerSchemas=false")
    assert not schema_jobs(off)


def schema_jobs(resources: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The Jobs registering schemas (a service with a database also has one migrating it)."""
    return [job for job in of_kind(resources, "Job") if job["metadata"]["name"].endswith("-register-schemas")]


def matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.get("matchLabels", {}).items())


def pod_reads_registry(pod: dict[str, Any], configmaps: set[str]) -> bool:
    """A container names SCHEMA_REGISTRY_URL itself or reads a ConfigMap of the chart (which holds it)."""
    for each in pod["containers"]:
        if any(env["name"] == "SCHEMA_REGISTRY_URL" for env in each.get("env", [])):
            return True
        if any(ref.get("configMapRef", {}).get("name") in configmaps for ref in each.get("envFrom", [])):
            return True
    return False


def test_the_registry_survives_a_drain_and_admits_only_the_services_pods(tmp_path: Path, helm: str) -> None:
    """Two registry replicas spread over zones and nodes under a PDB that lets one go at a time; its NetworkPolicy
    admits on 8080 exactly the pods that carry the client label, and every pod of the chart that reads the registry's
    URL carries it (the API, the worker, each pattern process, the schema Job); the migration Job does not need it."""
    answers = variant_answers("agent-patterns") | {"security": "mtls"}
    project = render(answers, tmp_path / "project")
    registry = {
        doc["kind"]: doc
        for path in ("deployment.yaml", "poddisruptionbudget.yaml", "networkpolicy.yaml")
        for doc in strimzi_docs(project, f"schema-registry/{path}")
    }
    deployment, pdb, policy = registry["Deployment"], registry["PodDisruptionBudget"], registry["NetworkPolicy"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["replicas"] >= 2
    assert matches(pdb["spec"]["selector"], labels)
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    keys = {c["topologyKey"] for c in deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]}
    assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    assert matches(policy["spec"]["podSelector"], labels)
    (api_rule,) = [rule for rule in policy["spec"]["ingress"] if {"port": 8080, "protocol": "TCP"} in rule["ports"]]
    (client,) = api_rule["from"]
    assert set(client) == {"podSelector"}, "from pods of this namespace only"

    resources = helm_template(helm, project, "--set", "worker.enabled=true")
    configmaps = {doc["metadata"]["name"] for doc in of_kind(resources, "ConfigMap")}
    pods = [(key, doc["spec"]["template"]) for key, doc in resources.items() if doc["kind"] in ("Deployment", "Job")]
    readers = [key for key, pod in pods if pod_reads_registry(pod["spec"], configmaps)]
    assert len(readers) >= 5, readers  # API, worker, fan-out channels, sealer, orchestrator, schema Job
    for key, pod in pods:
        admitted = matches(client["podSelector"], pod["metadata"].get("labels", {}))
        assert admitted == (key in readers), f"{key}: admitted {admitted}, reads the registry {key in readers}"
