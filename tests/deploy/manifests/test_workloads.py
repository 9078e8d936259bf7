"""The chart's workloads: the Deployments of the API, the worker and each pattern process, their probes, grace periods,
spread and update strategy, and the ConfigMap that sets every setting of the service."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.manifests.helpers import (
    PATTERN_COMPONENTS,
    VARIANTS,
    Checked,
    answers_of,
    chart_of,
    consumes,
    container,
    helm_template,
    of_kind,
    only,
    pattern_components,
    secret_settings,
    service_config,
    service_deployments,
    the_deployment,
)
from tools.render import render, variant_answers

pytestmark = pytest.mark.k8s


def settings_fields(project: Path) -> dict[str, ast.expr | None]:
    """The fields of the generated service's Settings class (settings.py, parsed), each with what it is assigned."""
    source = (project / "src" / answers_of(project)["package_name"] / "settings.py").read_text()
    (settings,) = [
        node for node in ast.parse(source).body if isinstance(node, ast.ClassDef) and node.name == "Settings"
    ]
    return {
        node.target.id: node.value
        for node in settings.body
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
    }


def settings_default(project: Path, name: str) -> float:
    """A setting's default, as the generated service declares it in settings.py: `Field(default=...)` or a value."""
    value = settings_fields(project)[name]
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "Field":
        (value,) = [keyword.value for keyword in value.keywords if keyword.arg == "default"]
    assert value is not None, f"no default for {name} in settings.py"
    default = ast.literal_eval(value)
    assert isinstance(default, int | float), f"{name}: {default!r} is no number"
    return float(default)


@pytest.mark.parametrize("variant", VARIANTS)
def test_pods_stop_within_their_grace_period(variant: str, checked: Checked, helm: str) -> None:
    out, _, _ = checked
    project = out / variant
    values = yaml.safe_load((chart_of(project) / "values.yaml").read_text())
    timeouts = values["timeouts"]
    # The chart's defaults are the service's own.
    assert timeouts["publishSeconds"] == settings_default(project, "publish_timeout_seconds")
    assert timeouts["readySeconds"] == settings_default(project, "ready_timeout_seconds")
    assert timeouts["shutdownSeconds"] == settings_default(project, "shutdown_timeout_seconds")
    for shutdown in (timeouts["shutdownSeconds"], 60):
        resources = helm_template(helm, project, "--set", f"timeouts.shutdownSeconds={shutdown}")
        config = service_config(resources)["data"]
        assert config["SHUTDOWN_TIMEOUT_SECONDS"] == str(shutdown)
        assert config["PUBLISH_TIMEOUT_SECONDS"] == str(timeouts["publishSeconds"])
        pod = the_deployment(resources)["spec"]["template"]["spec"]
        sleep = container(the_deployment(resources))["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert 0 < sleep <= 10, "a short drain before SIGTERM"
        # The preStop sleep counts against the grace period; then the POSTs in flight, then the stop steps
        # (message in hand, settling the consumer, flushing the producer), each bounded by the shutdown timeout.
        needed = sleep + timeouts["publishSeconds"] + 3 * shutdown
        assert pod["terminationGracePeriodSeconds"] > needed


@pytest.mark.parametrize("variant", VARIANTS)
def test_probes_wait_for_the_services_answer_and_drains_are_not_blocked(
    variant: str, checked: Checked, helm: str
) -> None:
    out, _, _ = checked
    project = out / variant
    answers = answers_of(project)
    resources = helm_template(helm, project)
    main = container(the_deployment(resources))
    ready_timeout = float(service_config(resources)["data"]["READY_TIMEOUT_SECONDS"])
    # GET /health/ready answers within twice READY_TIMEOUT_SECONDS (api/health.py); the probe waits longer.
    health = (project / "src" / answers["package_name"] / "api" / "health.py").read_text()
    assert "asyncio.timeout(2 * bound)" in health
    assert main["readinessProbe"]["timeoutSeconds"] > 2 * ready_timeout
    assert main["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    # Liveness fails when the consumer died (tests/unit/test_health.py in the project shows it).
    assert main["livenessProbe"]["httpGet"]["path"] == "/health/live"
    # While the lifespan connects to Kafka nothing answers: the startup probe holds the liveness probe off.
    assert main["startupProbe"]["httpGet"]["path"] == "/health/live"
    assert main["startupProbe"]["periodSeconds"] * main["startupProbe"]["failureThreshold"] >= 60
    assert "not runner.running" in health
    assert only(resources, "PodDisruptionBudget")["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


# Settings the ConfigMap leaves out on purpose: secrets come from Secrets (the KafkaUser's password, the shared
# processed-event store's URL, a pattern process's own, such as the audit chain's key), client certificates only where
# the answer is mtls, and each Deployment sets CONSUMER_ENABLED.
NOT_IN_CONFIGMAP = {
    "KAFKA_SASL_PASSWORD",
    "KAFKA_SSL_CERTFILE",
    "KAFKA_SSL_KEYFILE",
    "CONSUMER_ENABLED",
    "PROCESSED_EVENTS_URL",
    "DATABASE_URL",
    "KAFKA_INSTANCE_ID",  # the pod's own name (the downward API): see the test below
    *secret_settings(),
}


# Set only when a value is given: an empty OTLP endpoint means tracing off.
OPTIONAL_IN_CONFIGMAP = {"OTEL_EXPORTER_OTLP_ENDPOINT"}


def setting_names(project: Path) -> set[str]:
    """Every setting of the generated service, as the environment variable that sets it: the core's Settings and
    each pattern's own settings class."""
    names: set[str] = set()
    for module in (project / "src" / answers_of(project)["package_name"]).rglob("*.py"):
        for node in ast.parse(module.read_text()).body:
            if isinstance(node, ast.ClassDef) and any(
                isinstance(base, ast.Name) and base.id == "BaseSettings" for base in node.bases
            ):
                names |= environment_names(node)
    return names


def environment_names(settings: ast.ClassDef) -> set[str]:
    """A settings class's variables: its env_prefix before each field's name, or the field's alias alone."""
    prefix = ""
    fields: dict[str, str | None] = {}
    for node in settings.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            keywords = {keyword.arg: keyword.value for keyword in node.value.keywords}
            if "env_prefix" in keywords:  # model_config = SettingsConfigDict(env_prefix=...)
                prefix = ast.literal_eval(keywords["env_prefix"])
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            alias = None
            if isinstance(node.value, ast.Call):
                chosen = {keyword.arg: keyword.value for keyword in node.value.keywords}.get("validation_alias")
                if isinstance(chosen, ast.Call):  # AliasChoices("ENV_NAME", "field_name")
                    alias = ast.literal_eval(chosen.args[0])
            fields[node.target.id] = alias
    return {(alias or prefix + name).upper() for name, alias in fields.items()}


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_configmap_sets_every_setting_of_the_service(variant: str, checked: Checked, helm: str) -> None:
    out, _, _ = checked
    project = out / variant
    settings = setting_names(project)
    assert {"PUBLISH_MAX_IN_FLIGHT", "LOG_LEVEL", "OTEL_SERVICE_NAME"} <= settings
    config = service_config(helm_template(helm, project, "--set", "tracing.otlpEndpoint=http://collector:4318"))
    missing = settings - NOT_IN_CONFIGMAP - set(config["data"])
    assert not missing, f"settings the chart cannot set: {sorted(missing)}"
    unknown = set(config["data"]) - settings
    assert not unknown, f"ConfigMap keys the service ignores: {sorted(unknown)}"
    plain = service_config(helm_template(helm, project))["data"]
    assert not OPTIONAL_IN_CONFIGMAP & set(plain), "tracing stays off unless an endpoint is given"


COMPONENT = "app.kubernetes.io/component"
RUNNERS = {None, "worker"}
"""The service's own pods (the app, and the worker Deployment when it runs apart): their runner writes its
transactions with the process's one producer."""


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_pod_that_writes_transactions_on_librdkafka_is_its_own_transactional_instance(
    variant: str, checked: Checked, helm: str
) -> None:
    """One transactional producer per process (KIP-447): its id ends in the pod's name, so no two pods share one and
    a container restarted in its pod fences what its predecessor left open. (A pattern's own process without it ends
    its id in hostname and process id, the pod's name and 1 in a container.)"""
    out, _, _ = checked
    project = out / variant
    resources = helm_template(helm, project)
    instance = {"name": "KAFKA_INSTANCE_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
    consuming = [
        container
        for key, doc in resources.items()
        if key.startswith("Deployment/") and doc["spec"]["template"]["metadata"]["labels"].get(COMPONENT) in RUNNERS
        for container in doc["spec"]["template"]["spec"]["containers"]
    ]
    assert consuming
    named = [container for container in consuming if instance in container.get("env", [])]
    if "KAFKA_INSTANCE_ID" in setting_names(project):
        assert named == consuming, "a pod without its own transactional instance would share one id"
    else:
        assert not named, "a setting the service does not have"


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_worker_runs_as_its_own_deployment_that_autoscaling_scales(
    variant: str, checked: Checked, helm: str
) -> None:
    out, _, _ = checked
    project = out / variant
    package = answers_of(project)["package_name"]
    if not consumes(project):
        assert not list((chart_of(project) / "templates").glob("worker-*")), "a service that consumes nothing"
        return
    resources = helm_template(
        helm,
        project,
        "--set",
        "worker.enabled=true",
        "--api-versions",
        "keda.sh/v1alpha1",
        "--set",
        "serviceMonitor.enabled=true",
    )
    deployments = {doc["metadata"]["name"]: doc for doc in service_deployments(resources)}
    (api_name,) = [name for name in deployments if not name.endswith("-worker")]
    worker = deployments[f"{api_name}-worker"]
    main = container(worker)
    assert main["command"] == ["python", "-m", package, "worker"]
    config = service_config(resources)["data"]
    (metrics_port,) = [p["containerPort"] for p in main["ports"] if p["name"] == "metrics"]
    assert str(metrics_port) == config["METRICS_PORT"]
    # The API pods publish only; the worker's pods are never behind the API's Service.
    api_env = {e["name"]: e.get("value") for e in container(deployments[api_name]).get("env", [])}
    assert api_env["CONSUMER_ENABLED"] == "false"
    service = only(resources, "Service")
    worker_labels = worker["spec"]["template"]["metadata"]["labels"]
    assert not set(service["spec"]["selector"].items()) <= set(worker_labels.items())
    # Lag scaling moves the consumers, and the worker's pods keep a budget of their own.
    assert only(resources, "ScaledObject")["spec"]["scaleTargetRef"]["name"] == worker["metadata"]["name"]
    budgets = {doc["metadata"]["name"] for doc in of_kind(resources, "PodDisruptionBudget")}
    assert worker["metadata"]["name"] in budgets
    # Without a worker, the one Deployment consumes, as before.
    single = helm_template(helm, project, "--api-versions", "keda.sh/v1alpha1")
    (deployment,) = service_deployments(single)
    assert "CONSUMER_ENABLED" not in {e["name"] for e in container(deployment).get("env", [])}
    assert only(single, "ScaledObject")["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_pattern_process_has_a_deployment_that_no_other_object_selects(
    variant: str, checked: Checked, helm: str
) -> None:
    out, _, _ = checked
    project = out / variant
    answers = answers_of(project)
    resources = helm_template(helm, project)
    deployments = {doc["metadata"]["name"]: doc for doc in of_kind(resources, "Deployment")}
    expected = pattern_components(project)
    patterned = {
        doc["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component"): doc
        for doc in deployments.values()
        if doc["spec"]["template"]["metadata"]["labels"]
        .get("app.kubernetes.io/component", "")
        .startswith(PATTERN_COMPONENTS)
    }
    assert set(patterned) == set(expected), (
        "one Deployment per pattern process (a fan-out's per channel), none for an unchosen pattern"
    )
    for component, args in expected.items():
        main = container(patterned[component])
        assert main["command"] == [
            "python",
            "-m",
            answers.get("package_name") or answers["project_name"].replace("-", "_"),
        ]
        assert main["args"] == args
        env = {item["name"]: item for item in main.get("env", [])}
        # No HTTP API: a metrics port, served once the process's consumer has started, which readiness asks.
        (port,) = main["ports"]
        assert port["name"] == "metrics"
        assert env["METRICS_PORT"]["value"] == str(port["containerPort"])
        assert main["readinessProbe"]["httpGet"] == {"path": "/metrics", "port": "metrics"}
        for name, holder in secret_settings().items():
            assert (name in env) == (component == holder), f"only {holder} holds {name}"
    pod_labels = [doc["spec"]["template"]["metadata"]["labels"] for doc in patterned.values()]
    for doc in resources.values():
        selector: Any = (doc.get("spec") or {}).get("selector")
        if isinstance(selector, dict) and "matchLabels" in selector:  # Deployment, PodDisruptionBudget
            selector = selector["matchLabels"]
        if not isinstance(selector, dict) or doc in patterned.values():
            continue
        for labels in pod_labels:
            assert not selector.items() <= labels.items(), f"{doc['kind']}/{doc['metadata']['name']} selects {labels}"


def test_app_pods_spread_over_zones_and_nodes_by_default(tmp_path: Path, helm: str) -> None:
    """The API and the worker each spread their own pods (their selector labels), over zones then nodes, without ever
    staying Pending for it; topologySpreadConstraints replaces the default."""
    project = render(variant_answers("default"), tmp_path / "project")
    resources = helm_template(helm, project, "--set", "worker.enabled=true")
    deployments = service_deployments(resources)
    assert len(deployments) == 2
    for deployment in deployments:
        spec = deployment["spec"]["template"]["spec"]
        constraints = {c["topologyKey"]: c for c in spec["topologySpreadConstraints"]}
        assert set(constraints) == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
        for constraint in constraints.values():
            assert constraint["whenUnsatisfiable"] == "ScheduleAnyway"
            assert constraint["labelSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
            assert constraint["matchLabelKeys"] == ["pod-template-hash"]
    own = [{"maxSkew": 2, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule"}]
    overridden = helm_template(helm, project, "--set-json", f"topologySpreadConstraints={json.dumps(own)}")
    assert the_deployment(overridden)["spec"]["template"]["spec"]["topologySpreadConstraints"] == own
