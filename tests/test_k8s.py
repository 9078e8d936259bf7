"""The generated Kubernetes manifests: valid against real schemas, a checker that catches mistakes, least privilege.

These run tools/k8s/check.py (helm + kubeconform with Kubernetes and CRD schemas, see docs/kubernetes.md); its first
run installs the tools into ~/.cache/kafka-events, later runs reuse them.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from extensions.spec import PATTERNS
from tools.render import render, variant_answers

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
    "HorizontalPodAutoscaler",
    "ServiceMonitor",
}
# Scaling on consumer lag: only a service that consumes has lag, and only it gets them (and must).
LAG_SCALING_KINDS = {"ScaledObject", "TriggerAuthentication"}


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
    """What the service does, from its answers: it publishes to every topic (each has a POST route, and `emits_to`
    names one of them), reads the consumed ones, dead-letters what it consumed; its group; its transactional ids."""
    operations: dict[tuple[str, str, str], set[str]] = {}

    def grant(kind: str, name: str, pattern: str, *ops: str) -> None:
        operations.setdefault((kind, name, pattern), set()).update(ops)

    topics = answers["spec"]["topics"]
    for topic in topics:
        grant("topic", topic["name"], "literal", "Write", "Describe")  # POST publishes to it
        grant("topic", topic["name"], "literal", "DescribeConfigs")  # doctor reads its min.insync.replicas
        if topic.get("emits_to"):
            grant("topic", topic["emits_to"], "literal", "Write", "Describe")  # the handlers' emitted events
        if topic.get("consumed", True):
            grant("topic", topic["name"], "literal", "Read", "Describe")
            # `dlq replay` reads the dead letters back, in a group of its own.
            grant("topic", topic["name"] + ".dlq", "literal", "Read", "Write", "Describe", "DescribeConfigs")
    if any(topic.get("consumed", True) for topic in topics):
        grant("group", answers["spec"]["consumer_group"], "literal", "Read")
        grant("group", answers["spec"]["consumer_group"] + ".dlq-replay", "literal", "Read")
    if answers.get("delivery_guarantee") == "exactly-once":  # not asked when nothing is consumed
        grant("transactionalId", answers["k8s_name"] + "-", "prefix", "Write", "Describe")
    for kind, name, pattern, ops in pattern_acls(answers):
        grant(kind, name, pattern, *ops)
    return {(*key, frozenset(ops)) for key, ops in operations.items()}


def pattern_topics(answers: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The topics the chosen patterns add, by name, with the config each must have."""
    spec, chosen = answers["spec"], answers.get("patterns") or []
    topics: dict[str, dict[str, Any]] = {}
    if "fanout" in chosen:
        for channel in spec["fanout"]["channels"]:
            topics[f"{spec['fanout']['topic']}.{channel}.dlq"] = {}
    if "audit" in chosen:
        audit = spec.get("audit") or {}
        name = audit.get("topic") or spec["topics"][0]["name"] + ".audit"
        days = audit.get("retention_days")
        # Append-only: deleted by age only (forever by default), never compacted.
        topics[name] = {"cleanup.policy": "delete", "retention.ms": days * 86_400_000 if days else -1}
        topics[name + ".intake"] = {}
        topics[name + ".intake.dlq"] = {}  # intake records the sealer cannot read
    if "saga" in chosen:
        saga = spec["saga"]["name"].replace("_", "-")
        topics[f"saga.{saga}.commands"] = {}
        topics[f"saga.{saga}.commands.dlq"] = {}  # records the orchestrator cannot read
        # The orchestrator rebuilds every saga from the latest state per saga id: compacted, never deleted by age.
        topics[f"saga.{saga}.state"] = {"cleanup.policy": "compact"}
    if "cdc" in chosen:
        changes = spec["cdc"].get("topic") or spec["cdc"]["table"].replace("_", "-") + ".changes"
        topics[changes] = {"cleanup.policy": "delete"}
        topics[changes + ".dlq"] = {}
    return topics


def pattern_acls(answers: dict[str, Any]) -> list[tuple[str, str, str, tuple[str, ...]]]:
    """What the chosen patterns do: each fan-out channel reads the topic in its own group and writes its DLQ; the
    audit sealer reads the intake in its group and appends to the log under its own transactional ids."""
    spec, chosen = answers["spec"], answers.get("patterns") or []
    acls: list[tuple[str, str, str, tuple[str, ...]]] = []
    if "fanout" in chosen:
        acls.append(("topic", spec["fanout"]["topic"], "literal", ("Read", "Describe")))
        for channel in spec["fanout"]["channels"]:
            acls.append(("group", f"{spec['consumer_group']}.{channel}", "literal", ("Read",)))
            acls.append(("topic", f"{spec['fanout']['topic']}.{channel}.dlq", "literal", ("Write", "Describe")))
    if "audit" in chosen:
        audit = spec.get("audit") or {}
        name = audit.get("topic") or spec["topics"][0]["name"] + ".audit"
        acls.append(("topic", name + ".intake", "literal", ("Read", "Write", "Describe")))
        acls.append(("topic", name + ".intake.dlq", "literal", ("Write", "Describe")))
        acls.append(("topic", name, "literal", ("Read", "Write", "Describe")))
        acls.append(("group", f"{spec['consumer_group']}.audit-sealer", "literal", ("Read",)))
        acls.append(("transactionalId", answers["k8s_name"] + "-audit-sealer-", "prefix", ("Write", "Describe")))
    if "saga" in chosen:
        saga = spec["saga"]["name"].replace("_", "-")
        acls.append(("topic", f"saga.{saga}.commands", "literal", ("Read", "Write", "Describe")))
        acls.append(("topic", f"saga.{saga}.commands.dlq", "literal", ("Write", "Describe")))
        acls.append(("topic", f"saga.{saga}.state", "literal", ("Read", "Write", "Describe")))
        acls.append(("group", f"{spec['consumer_group']}.saga-{saga}", "literal", ("Read",)))
        acls.append(("transactionalId", f"{answers['k8s_name']}-saga-{saga}-", "prefix", ("Write", "Describe")))
    return acls


def check_kafka_user(user_file: Path, answers: dict[str, Any]) -> None:
    """The KafkaUser grants exactly what the service and its patterns use, and reads only what they consume."""
    (user,) = list(yaml.safe_load_all(user_file.read_text()))
    assert user["kind"] == "KafkaUser"
    assert user["metadata"]["name"] == answers["k8s_name"]
    assert user["spec"]["authentication"] == {"type": SERVICE_AUTHENTICATION[answers["security"]]}
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
    readable = {name for kind, name, _, ops in rendered if kind == "topic" and "Read" in ops}
    consumed = {topic["name"] for topic in answers["spec"]["topics"] if topic.get("consumed", True)}
    by_patterns = {name for kind, name, _, ops in pattern_acls(answers) if kind == "topic" and "Read" in ops}
    replayed = {name + ".dlq" for name in consumed}
    assert readable == consumed | by_patterns | replayed, (
        "Read only on what is consumed and on its dead letters (`dlq replay`): never on a topic only produced"
    )
    for acl in user["spec"]["authorization"]["acls"]:
        assert acl.get("type", "allow") == "allow"
        assert "host" not in acl


@pytest.mark.parametrize("variant", VARIANTS)
def test_kafka_user_acls_are_exactly_what_the_service_uses(
    variant: str, checked: tuple[Path, subprocess.CompletedProcess[str], dict[str, Any]]
) -> None:
    out, _, _ = checked
    project = out / variant
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    user_file = project / "deploy" / "strimzi" / "base" / "kafka-user.yaml"
    if answers.get("security", "none") == "none":
        assert not user_file.exists(), "no KafkaUser where the service does not authenticate"
    else:
        check_kafka_user(user_file, answers)

    # The KafkaTopics are the same topics, and the chart autoscales on the consumed ones.
    topics = list(yaml.safe_load_all((project / "deploy" / "strimzi" / "base" / "kafka-topics.yaml").read_text()))
    names = {t["name"] for t in answers["spec"]["topics"]}
    assert {t["spec"]["topicName"] for t in topics} == names | {n + ".dlq" for n in names} | set(
        pattern_topics(answers)
    )
    by_name = {t["spec"]["topicName"]: t for t in topics}
    for name, config in pattern_topics(answers).items():
        assert config.items() <= by_name[name]["spec"]["config"].items(), name
        if config.get("cleanup.policy") != "compact":
            assert "compact" not in str(by_name[name]["spec"]["config"].get("cleanup.policy", "")), name
        else:
            assert "retention.ms" not in by_name[name]["spec"]["config"], f"{name}: a compacted state never expires"
    (values_file,) = project.glob("deploy/helm/*/values.yaml")
    values = yaml.safe_load(values_file.read_text())
    assert values["kafka"]["user"] == answers["k8s_name"]
    assert values["kafka"]["consumerGroup"] == answers["spec"]["consumer_group"]
    spec, chosen = answers["spec"], answers.get("patterns") or []
    # The change topic of a captured table is consumed too: autoscaling follows its lag as well.
    changes = (
        [spec["cdc"].get("topic") or spec["cdc"]["table"].replace("_", "-") + ".changes"] if "cdc" in chosen else []
    )
    assert [t["name"] for t in values["kafka"]["topics"]] == [t["name"] for t in spec["topics"]] + changes
    assert all(t["consumed"] for t in values["kafka"]["topics"] if t["name"] in changes)


def test_every_patterns_acls_are_in_the_kafka_user_of_a_secured_service(tmp_path: Path) -> None:
    """The matrix runs every pattern together without security (agent-patterns): rendered with scram-tls, its
    KafkaUser grants exactly what each pattern's processes use (groups, topics, transactional ids), nothing more."""
    answers = variant_answers("agent-patterns") | {"security": "scram-tls"}
    project = render(answers, tmp_path / "agent-patterns-secured")
    stored = yaml.safe_load((project / ".copier-answers.yml").read_text())
    # The data pipelines' Kafka Connect user: test_a_secured_connect_worker_gets_a_user_with_only_what_it_does.
    assert set(stored["patterns"]) == set(PATTERNS) - {"outbox", "cdc"}, "every agent pattern the template offers"
    check_kafka_user(project / "deploy" / "strimzi" / "base" / "kafka-user.yaml", stored)


# ------------------------------------------------------------------------------------------------------------------
# What a schema cannot catch: the rendered manifests of every variant, read the way a cluster would use them.


@pytest.fixture(scope="session")
def helm(checked: tuple[Path, subprocess.CompletedProcess[str], dict[str, Any]]) -> str:
    """The helm binary check.py installed (the `checked` fixture ran it once)."""
    from tools.k8s.check import HELM_VERSION, go_install

    return str(go_install("helm.sh/helm/v4/cmd/helm", HELM_VERSION, "helm"))


NAMESPACE = "team-a"


def answers_of(project: Path) -> dict[str, Any]:
    answers: dict[str, Any] = yaml.safe_load((project / ".copier-answers.yml").read_text())
    return answers


def chart_of(project: Path) -> Path:
    (chart,) = (p.parent for p in (project / "deploy" / "helm").glob("*/Chart.yaml"))
    return chart


def helm_template(helm: str, project: Path, *args: str) -> dict[str, dict[str, Any]]:
    """`helm template` of the project's chart in NAMESPACE: its resources by "Kind/name"."""
    from tools.k8s.check import readme_install_values

    chart = chart_of(project)
    required = readme_install_values(project)  # what the README's install command sets
    proc = subprocess.run(
        [helm, "template", chart.name, str(chart), "--namespace", NAMESPACE, *required, *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    docs = [doc for doc in yaml.safe_load_all(proc.stdout) if doc]
    return {f"{doc['kind']}/{doc['metadata']['name']}": doc for doc in docs}


def of_kind(resources: dict[str, dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for key, doc in resources.items() if key.startswith(kind + "/")]


def only(resources: dict[str, dict[str, Any]], kind: str) -> dict[str, Any]:
    (doc,) = of_kind(resources, kind)
    return doc


def service_config(resources: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The service's ConfigMap (not the Kafka Connect metrics rules of the data pipelines)."""
    (doc,) = [
        doc for doc in of_kind(resources, "ConfigMap") if not doc["metadata"]["name"].endswith("-connect-metrics")
    ]
    return doc


# Pods of the chosen agent patterns (fan-out channels, the audit sealer, the saga orchestrator) run Deployments of
# their own.
PATTERN_COMPONENTS = ("fanout-", "audit-", "saga-")


def service_deployments(resources: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The service's Deployments (the API, and the worker when it has one of its own), not the patterns'."""
    return [
        doc
        for doc in of_kind(resources, "Deployment")
        if not doc["spec"]["template"]["metadata"]["labels"]
        .get("app.kubernetes.io/component", "")
        .startswith(PATTERN_COMPONENTS)
    ]


def the_deployment(resources: dict[str, dict[str, Any]]) -> dict[str, Any]:
    (doc,) = service_deployments(resources)
    return doc


def strimzi_docs(project: Path, relative: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((project / "deploy" / "strimzi" / relative).read_text()) if doc]


# The listener authentication each `security` answer gives the service (None: no authentication at all).
SERVICE_AUTHENTICATION = {"none": None, "scram-tls": "scram-sha-512", "mtls": "tls"}


def service_port(project: Path) -> int:
    """The port of the listener the service uses, as its `security` answer says, in both cluster profiles (they
    must agree)."""
    wanted = SERVICE_AUTHENTICATION[answers_of(project).get("security", "none")]
    ports = set()
    for profile in ("dev", "production"):
        (kafka,) = strimzi_docs(project, f"{profile}/kafka.yaml")
        ports |= {
            listener["port"]
            for listener in kafka["spec"]["kafka"]["listeners"]
            if listener.get("authentication", {}).get("type") == wanted
        }
    (port,) = ports
    return int(port)


def settings_default(project: Path, name: str) -> float:
    """A setting's default, as the generated service declares it in settings.py."""
    answers = answers_of(project)
    source = (project / "src" / answers["package_name"] / "settings.py").read_text()
    match = re.search(rf"^    {name}: \w+ = Field\(\s*default=([0-9.]+)", source, re.MULTILINE)
    assert match, f"no default for {name} in settings.py"
    return float(match.group(1))


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (main,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(main)


def probe_port(main: dict[str, Any], probe: dict[str, Any]) -> int:
    port = probe["httpGet"]["port"]
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in main["ports"] if p["name"] == port]
    return int(number)


@pytest.mark.parametrize("variant", VARIANTS)
def test_schema_registry_is_probed_on_apicurios_management_port(
    variant: str, checked: tuple[Path, subprocess.CompletedProcess[str], dict[str, Any]]
) -> None:
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
def test_keda_reaches_kafka_by_its_fully_qualified_name_and_only_where_keda_is(
    variant: str, checked: tuple[Path, subprocess.CompletedProcess[str], dict[str, Any]], helm: str
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
    for trigger in scaled["spec"]["triggers"]:
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


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_hook_job_registers_the_schemas_before_the_pods_start(
    variant: str, checked: tuple[Path, subprocess.CompletedProcess[str], dict[str, Any]], helm: str
) -> None:
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


@pytest.mark.parametrize("variant", VARIANTS)
def test_pods_stop_within_their_grace_period(
    variant: str, checked: tuple[Path, subprocess.CompletedProcess[str], dict[str, Any]], helm: str
) -> None:
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
    variant: str, checked: tuple[Path, subprocess.CompletedProcess[str], dict[str, Any]], helm: str
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


@pytest.mark.parametrize("variant", VARIANTS)
def test_production_controllers_and_brokers_spread_over_zones(
    variant: str, checked: tuple[Path, subprocess.CompletedProcess[str], dict[str, Any]]
) -> None:
    out, _, _ = checked
    cluster = answers_of(out / variant)["kafka_cluster"]
    pools = strimzi_docs(out / variant, "production/kafka-node-pools.yaml")
    assert {tuple(pool["spec"]["roles"]) for pool in pools} == {("controller",), ("broker",)}
    for pool in pools:
        name = pool["metadata"]["name"]
        assert pool["metadata"]["labels"]["strimzi.io/cluster"] == cluster
        assert pool["spec"]["replicas"] >= 3
        constraints = pool["spec"]["template"]["pod"]["topologySpreadConstraints"]
        (zone,) = [c for c in constraints if c["topologyKey"] == "topology.kubernetes.io/zone"]
        assert zone["whenUnsatisfiable"] == "DoNotSchedule", name
        assert zone["maxSkew"] == 1
        # Strimzi labels each pod with its pool: the spread counts this pool's pods only.
        assert zone["labelSelector"]["matchLabels"] == {"strimzi.io/cluster": cluster, "strimzi.io/pool-name": name}


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_image_build_has_a_lock_file_to_build_from(
    variant: str, checked: tuple[Path, subprocess.CompletedProcess[str], dict[str, Any]]
) -> None:
    out, _, _ = checked
    project = out / variant
    dockerfile = (project / "Dockerfile").read_text()
    assert "uv sync --frozen" in dockerfile
    assert "source=uv.lock" in dockerfile
    assert "!uv.lock" in (project / ".dockerignore").read_text().splitlines()
    assert "uv.lock" not in (project / ".gitignore").read_text()
    # The generated README makes the lock before the image, and says to commit it.
    readme = (project / "README.md").read_text()
    assert readme.index("uv lock") < readme.index("docker build")
    assert "commit `uv.lock`" in readme


@pytest.mark.parametrize("variant", VARIANTS)
def test_make_worker_runs_against_the_local_stack(
    variant: str, checked: tuple[Path, subprocess.CompletedProcess[str], dict[str, Any]]
) -> None:
    out, _, _ = checked
    project = out / variant
    package = answers_of(project)["package_name"]
    makefile = (project / "Makefile").read_text()
    match = re.search(r"^worker:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert match, "no `worker` target"
    recipe = match.group(1)
    assert ".stack.env" in recipe
    assert f"python -m {package} worker" in recipe
    proc = subprocess.run(["make", "-n", "worker"], cwd=project, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("variant", VARIANTS)
def test_named_templates_carry_the_charts_name(
    variant: str, checked: tuple[Path, subprocess.CompletedProcess[str], dict[str, Any]]
) -> None:
    out, _, _ = checked
    chart = chart_of(out / variant)
    defined = {
        name
        for helpers in (chart / "templates").glob("_*.tpl")
        for name in re.findall(r'define "([^"]+)"', helpers.read_text())
    }
    assert defined
    assert all(name.startswith(chart.name + ".") for name in defined), defined
    for template in (chart / "templates").iterdir():
        used = set(re.findall(r'(?:include|template) "([^"]+)"', template.read_text()))
        assert used <= defined, (template.name, used - defined)


def test_two_generated_charts_live_in_one_umbrella_chart(
    checked: tuple[Path, subprocess.CompletedProcess[str], dict[str, Any]], helm: str, tmp_path: Path
) -> None:
    out, _, _ = checked
    charts = {chart_of(out / variant).name: chart_of(out / variant) for variant in VARIANTS}
    assert len(charts) >= 2, "the variants' charts need distinct names"
    umbrella = tmp_path / "umbrella"
    (umbrella / "charts").mkdir(parents=True)
    (umbrella / "Chart.yaml").write_text(
        yaml.safe_dump({"apiVersion": "v2", "name": "umbrella", "version": "0.1.0", "type": "application"})
    )
    from tools.k8s.check import readme_install_values

    required: list[str] = []  # what each project's README install command sets, under its subchart's name
    for variant in VARIANTS:
        chart = chart_of(out / variant)
        if (umbrella / "charts" / chart.name).exists():
            continue
        shutil.copytree(chart, umbrella / "charts" / chart.name)
        required += [f"{chart.name}.{arg}" if arg != "--set" else arg for arg in readme_install_values(out / variant)]
    proc = subprocess.run(
        [helm, "template", "shop", str(umbrella), "--api-versions", "keda.sh/v1alpha1", *required],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    deployments = [d for d in yaml.safe_load_all(proc.stdout) if d and d["kind"] == "Deployment"]
    # Each subchart renders with its own helpers: its own name, selector and image.
    services = service_deployments({f"Deployment/{d['metadata']['name']}": d for d in deployments})
    assert sorted(d["metadata"]["name"] for d in services) == sorted(f"shop-{name}" for name in charts)
    for deployment in services:
        name = deployment["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
        assert deployment["metadata"]["name"] == f"shop-{name}"
        assert container(deployment)["image"].rsplit("/", 1)[-1].startswith(f"{name}:")


def test_the_cluster_name_and_kafka_version_are_one_value_each(tmp_path: Path, helm: str) -> None:
    from tools.render import render, variant_answers

    answers = {**variant_answers(VARIANTS[0]), "kafka_cluster": "orders-kafka", "security": "scram-tls"}
    project = render(answers, tmp_path / "project")
    strimzi = project / "deploy" / "strimzi"
    for path in sorted(strimzi.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc["kind"] == "Kafka":
                assert doc["metadata"]["name"] == "orders-kafka"
            elif doc and doc["kind"].startswith("Kafka"):
                assert doc["metadata"]["labels"]["strimzi.io/cluster"] == "orders-kafka", path
    text = "\n".join(p.read_text() for p in sorted(strimzi.rglob("*")) if p.is_file())
    assert "events-" not in text.replace("registry-events", "")
    assert "orders-kafka-kafka-bootstrap:9093" in text
    assert "orders-kafka-cluster-ca-cert" in text
    resources = helm_template(helm, project, "--api-versions", "keda.sh/v1alpha1")
    assert service_config(resources)["data"]["KAFKA_BOOTSTRAP_SERVERS"].startswith("orders-kafka-kafka-bootstrap.")
    volumes = the_deployment(resources)["spec"]["template"]["spec"]["volumes"]
    assert {"secretName": "orders-kafka-cluster-ca-cert"}.items() <= volumes[-1]["secret"].items()
    # Both cluster profiles run the Kafka version the local stack runs, which the tests prove against.
    versions = {
        doc["spec"]["kafka"]["version"]
        for profile in ("dev", "production")
        for doc in strimzi_docs(project, f"{profile}/kafka.yaml")
    }
    stack = (project / "scripts" / "kafka_stack.py").read_text()
    (stack_version,) = re.findall(r'^KAFKA_VERSION = "([^"]+)"', stack, re.MULTILINE)
    assert versions == {stack_version}


def test_the_spec_docs_error_example_is_the_validators_message(tmp_path: Path) -> None:
    from tools.render import render, variant_answers

    docs = (REPO / "docs" / "spec.md").read_text()
    (example,) = re.findall(r"each with its path and what to type instead, e\.g\.\n\n {4}(.+?)\n\n", docs, re.DOTALL)
    answers = variant_answers("default")
    spec = yaml.safe_load(
        """
        consumer_group: g
        topics:
          - name: things
            key: id
            events:
              - name: ThingMade
                fields: [{name: name, type: string}]
        """
    )
    with pytest.raises(ValueError, match="Validation error") as error:
        render({**answers, "spec": spec}, tmp_path / "project")
    assert " ".join(example.split()) in " ".join(str(error.value).split())


def curl_example(readme: str) -> tuple[str, dict[str, Any], list[str]]:
    """The POST route, its JSON body and the GET paths (none where nothing is consumed) of a README's curl example."""
    (post,) = re.findall(r"curl -i -X POST http://127\.0\.0\.1:8000(/\S+) ", readme)
    (body,) = re.findall(r"-d '(\{.*\})'", readme)
    gets = re.findall(r"^curl http://127\.0\.0\.1:8000(/\S+)", readme, re.MULTILINE)
    return post, json.loads(body), gets


def check_curl_example(readme: str, spec: dict[str, Any]) -> None:
    post, body, gets = curl_example(readme)
    (topic,) = [t for t in spec["topics"] if t.get("route") == post]
    (event,) = [e for e in topic["events"] if e["name"] == body["type"]]
    required = {f["name"] for f in event["fields"] if not f.get("optional")}
    assert set(body) - {"type"} == required, "the body holds the event's required fields and its type"
    if topic.get("consumed", True):
        assert gets == [f"{post}/{body[topic['key']]}"], "GET reads back the key just posted"
    else:
        assert gets == [], "a topic the service does not consume has no read route"


def test_the_readmes_curl_example_fits_the_default_spec() -> None:
    readme = (REPO / "README.md").read_text()
    use_it = readme[readme.index("## Use it") : readme.index("## Work on it")]
    copier = yaml.safe_load((REPO / "copier.yml").read_text())
    check_curl_example(use_it, yaml.safe_load(copier["spec"]["default"]))
    assert "--defaults" in use_it
    assert "uvx --with copier-template-extensions copier copy --trust" in use_it


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_generated_readmes_curl_example_fits_its_spec(
    variant: str, checked: tuple[Path, subprocess.CompletedProcess[str], dict[str, Any]]
) -> None:
    out, _, _ = checked
    project = out / variant
    check_curl_example((project / "README.md").read_text(), answers_of(project)["spec"])


# --- operating the service: settings, the worker, metrics and monitors ------------------------------------------

# Settings the ConfigMap leaves out on purpose: secrets come from Secrets (the KafkaUser's password, the shared
# processed-event store's URL, the audit chain's key), client certificates only where the answer is mtls, and each
# Deployment sets CONSUMER_ENABLED.
NOT_IN_CONFIGMAP = {
    "KAFKA_SASL_PASSWORD",
    "KAFKA_SSL_CERTFILE",
    "KAFKA_SSL_KEYFILE",
    "CONSUMER_ENABLED",
    "PROCESSED_EVENTS_URL",
    "DATABASE_URL",
    "AUDIT_CHAIN_KEY",
}
# Set only when a value is given: an empty OTLP endpoint means tracing off.
OPTIONAL_IN_CONFIGMAP = {"OTEL_EXPORTER_OTLP_ENDPOINT"}


def setting_names(project: Path) -> set[str]:
    """Every setting of the generated service, as the environment variable that sets it."""
    source = (project / "src" / answers_of(project)["package_name"] / "settings.py").read_text()
    body = source.split("class Settings(BaseSettings):", 1)[1].split("\n\n@lru_cache", 1)[0]
    return {name.upper() for name in re.findall(r"^    ([a-z_]+): ", body, re.MULTILINE)}


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_configmap_sets_every_setting_of_the_service(
    variant: str, checked: tuple[Path, subprocess.CompletedProcess[str], dict[str, Any]], helm: str
) -> None:
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


def consumes(project: Path) -> bool:
    return "worker" in yaml.safe_load((chart_of(project) / "values.yaml").read_text())


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_worker_runs_as_its_own_deployment_that_autoscaling_scales(
    variant: str, checked: tuple[Path, subprocess.CompletedProcess[str], dict[str, Any]], helm: str
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
def test_prometheus_scrapes_the_api_the_worker_and_the_pattern_processes_where_they_serve_metrics(
    variant: str, checked: tuple[Path, subprocess.CompletedProcess[str], dict[str, Any]], helm: str
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
def test_the_monitoring_manifests_are_validated(
    variant: str, checked: tuple[Path, subprocess.CompletedProcess[str], dict[str, Any]]
) -> None:
    _, _, report = checked
    (project,) = [r for r in report["results"] if Path(r["project"]).name == variant]
    assert project["kinds"].get("PrometheusRule") == 1, project["kinds"]
    assert project["kinds"].get("PodMonitor", 0) >= 1, "the brokers' PodMonitor in deploy/monitoring"


def pattern_components(project: Path) -> list[str]:
    """The components of the pattern processes the answers choose: a fan-out channel each, the sealer, the saga's
    orchestrator."""
    answers = answers_of(project)
    chosen = answers.get("patterns") or []
    components = (
        [f"fanout-{channel}" for channel in answers["spec"]["fanout"]["channels"]] if "fanout" in chosen else []
    )
    return components + ["audit-sealer"] * ("audit" in chosen) + ["saga-orchestrator"] * ("saga" in chosen)


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_pattern_process_has_a_deployment_that_no_other_object_selects(
    variant: str, checked: tuple[Path, subprocess.CompletedProcess[str], dict[str, Any]], helm: str
) -> None:
    out, _, _ = checked
    project = out / variant
    answers = answers_of(project)
    resources = helm_template(helm, project)
    deployments = {doc["metadata"]["name"]: doc for doc in of_kind(resources, "Deployment")}
    commands = {"audit-sealer": ["audit", "seal"], "saga-orchestrator": ["saga", "run"]}
    expected = {c: commands.get(c, ["fanout", c.removeprefix("fanout-")]) for c in pattern_components(project)}
    patterned = {
        doc["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component"): doc
        for doc in deployments.values()
        if doc["spec"]["template"]["metadata"]["labels"]
        .get("app.kubernetes.io/component", "")
        .startswith(PATTERN_COMPONENTS)
    }
    assert set(patterned) == set(expected), (
        "one Deployment per channel, one for the sealer and one for the saga orchestrator, none for unchosen"
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
        assert ("AUDIT_CHAIN_KEY" in env) == (component == "audit-sealer"), "only the sealer holds the chain key"
    pod_labels = [doc["spec"]["template"]["metadata"]["labels"] for doc in patterned.values()]
    for doc in resources.values():
        selector: Any = (doc.get("spec") or {}).get("selector")
        if isinstance(selector, dict) and "matchLabels" in selector:  # Deployment, PodDisruptionBudget
            selector = selector["matchLabels"]
        if not isinstance(selector, dict) or doc in patterned.values():
            continue
        for labels in pod_labels:
            assert not selector.items() <= labels.items(), f"{doc['kind']}/{doc['metadata']['name']} selects {labels}"


# ------------------------------------------------------------------------------------------------------------------
# The `security` answer: the cluster, the KafkaUser and the chart agree on how the service authenticates.


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_cluster_authorizes_exactly_when_the_service_authenticates(
    variant: str, checked: tuple[Path, subprocess.CompletedProcess[str], dict[str, Any]]
) -> None:
    out, _, _ = checked
    project = out / variant
    security = answers_of(project).get("security", "none")
    for profile in ("dev", "production"):
        (kafka,) = strimzi_docs(project, f"{profile}/kafka.yaml")
        listeners = {listener["name"]: listener for listener in kafka["spec"]["kafka"]["listeners"]}
        authorization = kafka["spec"]["kafka"].get("authorization")
        # The registry's own listener, whatever the service uses.
        assert listeners["tls"]["authentication"] == {"type": "tls"}, profile
        if security == "none":
            assert authorization is None, profile
            assert listeners["plain"] == {"name": "plain", "port": 9092, "type": "internal", "tls": False}, profile
        else:
            assert authorization == {"type": "simple"}, f"{profile}: only Strimzi's own operators are super users"
            assert "plain" not in listeners, f"{profile}: no listener lets a client in unauthenticated"
            assert all(listener["tls"] for listener in listeners.values()), profile
        # One listener per way in: none the answer does not use.
        assert ("scram" in listeners) == (security == "scram-tls"), profile
    (registry_user,) = strimzi_docs(project, "schema-registry/kafka-user.yaml")
    assert ("authorization" in registry_user["spec"]) == (security != "none")


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_chart_reads_the_kafka_users_secret_as_the_answer_says(
    variant: str, checked: tuple[Path, subprocess.CompletedProcess[str], dict[str, Any]], helm: str
) -> None:
    out, _, _ = checked
    project = out / variant
    answers = answers_of(project)
    security = answers.get("security", "none")
    resources = helm_template(helm, project)
    config = service_config(resources)["data"]
    (deployment,) = [d for d in of_kind(resources, "Deployment") if d["metadata"]["name"].endswith(answers["k8s_name"])]
    main = container(deployment)
    secret_keys = {
        (env["valueFrom"]["secretKeyRef"]["name"], env["valueFrom"]["secretKeyRef"]["key"])
        for env in main.get("env", [])
        if "secretKeyRef" in env.get("valueFrom", {})
    }
    # A service with a database reads its URL from a Secret of its own, whatever the answer for Kafka.
    secret_keys -= {(f"{answers['k8s_name']}-database", "url")}
    volumes = {volume["name"]: volume for volume in deployment["spec"]["template"]["spec"]["volumes"]}
    mounted_user = volumes.get("kafka-user", {}).get("secret", {})
    assert config["KAFKA_BOOTSTRAP_SERVERS"].endswith(f":{service_port(project)}")
    if security == "none":
        assert not secret_keys
        assert not mounted_user
        assert "cluster-ca" not in volumes
    elif security == "scram-tls":
        assert config["KAFKA_SASL_USERNAME"] == answers["k8s_name"]
        assert secret_keys == {(answers["k8s_name"], "password")}
        assert not mounted_user
    else:
        assert not secret_keys
        assert mounted_user["secretName"] == answers["k8s_name"]
        assert {item["key"] for item in mounted_user["items"]} == {"user.crt", "user.key"}
        assert (config["KAFKA_SSL_CERTFILE"], config["KAFKA_SSL_KEYFILE"]) == (
            "/etc/kafka/user/user.crt",
            "/etc/kafka/user/user.key",
        )
    if security != "none":
        assert config["KAFKA_SSL_CAFILE"] == "/etc/kafka/cluster-ca/ca.crt"
        assert volumes["cluster-ca"]["secret"]["secretName"] == f"{answers['kafka_cluster']}-cluster-ca-cert"


@pytest.mark.parametrize("variant", VARIANTS)
def test_no_secret_is_in_the_answers_or_the_repository(
    variant: str, checked: tuple[Path, subprocess.CompletedProcess[str], dict[str, Any]]
) -> None:
    out, _, _ = checked
    project = out / variant
    answers = (project / ".copier-answers.yml").read_text().lower()
    assert not re.search(r"password|secret|private key|user\.key", answers)
    for path in project.rglob("*"):
        if path.is_file() and ".venv" not in path.parts and path.suffix in {".yaml", ".yml", ".py", ".env", ".toml"}:
            assert "BEGIN PRIVATE KEY" not in path.read_text(errors="replace"), path


# --- the data pipelines: Kafka Connect with Debezium, and the connectors of the outbox and the captured table ----


def test_kafka_connect_is_built_with_the_debezium_the_stack_runs_and_runs_the_connectors_the_service_registers(
    checked: tuple[Path, subprocess.CompletedProcess[str], dict[str, Any]], helm: str
) -> None:
    out, _, _ = checked
    project = out / "data-pipelines"
    resources = helm_template(helm, project, "--set", "connect.image=registry.invalid/connect:1")
    connect = only(resources, "KafkaConnect")
    assert connect["spec"]["build"]["output"]["image"] == "registry.invalid/connect:1", "the image is a value"
    ((artifact,),) = [plugin["artifacts"] for plugin in connect["spec"]["build"]["plugins"]]
    stack = (project / "scripts" / "kafka_stack.py").read_text()
    (debezium,) = re.findall(r'^DEBEZIUM_VERSION = "([^"]+)"', stack, re.MULTILINE)
    (kafka,) = re.findall(r'^KAFKA_VERSION = "([^"]+)"', stack, re.MULTILINE)
    assert artifact == {
        "type": "maven",
        "group": "io.debezium",
        "artifact": "debezium-connector-postgres",
        "version": debezium,
    }
    assert connect["spec"]["version"] == kafka
    assert connect["spec"]["config"]["exactly.once.source.support"] == "enabled"
    # Metrics: Strimzi's JMX exporter with the rules of a ConfigMap of the chart (which tests/test_chart_processes.py
    # runs), scraped by a PodMonitor of the Connect pods where the chart makes monitors.
    reference = connect["spec"]["metricsConfig"]["valueFrom"]["configMapKeyRef"]
    rules = yaml.safe_load(resources[f"ConfigMap/{reference['name']}"]["data"][reference["key"]])
    assert {"kafka_connect_connector_status", "kafka_connect_connector_task_status"} <= {
        rule["name"] for rule in rules["rules"]
    }
    assert not of_kind(resources, "PodMonitor"), "monitors only with serviceMonitor.enabled"
    monitored = helm_template(
        helm, project, "--set", "connect.image=registry.invalid/connect:1", "--set", "serviceMonitor.enabled=true"
    )
    (monitor,) = [doc for doc in of_kind(monitored, "PodMonitor") if doc["metadata"]["name"].endswith("-connect")]
    assert monitor["spec"]["selector"]["matchLabels"] == {
        "strimzi.io/cluster": connect["metadata"]["name"],
        "strimzi.io/kind": "KafkaConnect",
    }
    assert monitor["spec"]["podMetricsEndpoints"][0]["port"] == "tcp-prometheus"
    # The same configs as `python -m <package> connect register` PUTs, the database read from its Secret.
    package = answers_of(project)["package_name"]
    source = (project / "src" / package / "database" / "connectors.py").read_text()
    (assignment,) = [
        node
        for node in ast.parse(source).body
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == "CONNECTORS"
    ]
    assert assignment.value is not None
    expected: dict[str, dict[str, str]] = ast.literal_eval(assignment.value)
    connectors = {doc["metadata"]["name"]: doc for doc in of_kind(resources, "KafkaConnector")}
    assert set(connectors) == set(expected)
    for name, config in expected.items():
        spec = connectors[name]["spec"]
        assert connectors[name]["metadata"]["labels"]["strimzi.io/cluster"] == connect["metadata"]["name"]
        assert (spec["class"], str(spec["tasksMax"])) == (config["connector.class"], config["tasks.max"])
        database = {key: value for key, value in spec["config"].items() if key.startswith("database.")}
        assert {key: value for key, value in spec["config"].items() if key not in database} == {
            key: value for key, value in config.items() if key not in ("connector.class", "tasks.max")
        }
        secret = f"{NAMESPACE}/order-pipelines-database"
        assert database["database.password"] == f"${{secrets:{secret}:password}}", "never the password itself"
        assert set(database) == {f"database.{k}" for k in ("hostname", "port", "user", "password", "dbname")}
    (migrate,) = [job for job in of_kind(resources, "Job") if job["metadata"]["name"].endswith("-migrate")]
    assert set(migrate["metadata"]["annotations"]["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
    (migrating,) = migrate["spec"]["template"]["spec"]["containers"]
    assert migrating["command"] == ["python", "-m", package, "migrate"]
    role = only(resources, "Role")
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["order-pipelines-database"], "verbs": ["get"]}
    ]
    # Strimzi serves the KafkaConnect's REST API as the Service <KafkaConnect name>-connect-api.
    assert service_config(resources)["data"]["KAFKA_CONNECT_URL"] == (
        f"http://{connect['metadata']['name']}-connect-api:8083"
    )
    service = the_deployment(resources)["spec"]["template"]["spec"]["containers"][0]
    assert {
        "name": "DATABASE_URL",
        "valueFrom": {"secretKeyRef": {"name": "order-pipelines-database", "key": "url"}},
    } in service["env"]


def test_a_secured_connect_worker_gets_a_user_with_only_what_it_does(tmp_path: Path, helm: str) -> None:
    answers = {**variant_answers("data-pipelines"), "security": "scram-tls"}
    project = render(answers, tmp_path / "project")
    resources = helm_template(helm, project)
    connect = only(resources, "KafkaConnect")
    assert connect["spec"]["authentication"]["type"] == "scram-sha-512"
    user = resources["KafkaUser/order-pipelines-connect"]
    acls = {
        (acl["resource"]["type"], acl["resource"].get("name")): set(acl["operations"])
        for acl in user["spec"]["authorization"]["acls"]
    }
    assert acls == {
        ("group", "order-pipelines-connect"): {"Read"},
        ("topic", "order-pipelines-connect-"): {"Create", "Describe", "DescribeConfigs", "Read", "Write"},
        ("transactionalId", "connect-cluster-order-pipelines-connect"): {"Describe", "Write"},
        ("transactionalId", "order-pipelines-connect-"): {"Describe", "Write"},
        ("cluster", None): {"Describe", "IdempotentWrite"},
        ("topic", "orders"): {"Describe", "Write"},
        ("topic", "customers.changes"): {"Describe", "Write"},
        # Each connector's heartbeat records (heartbeat.interval.ms), on a KafkaTopic of the chart.
        ("topic", "debezium-heartbeat.order-pipelines-outbox"): {"Describe", "Write"},
        ("topic", "debezium-heartbeat.order-pipelines-cdc"): {"Describe", "Write"},
    }
    heartbeats = {
        doc["spec"]["topicName"] for doc in of_kind(resources, "KafkaTopic") if "heartbeat" in doc["spec"]["topicName"]
    }
    assert heartbeats == {
        f"{connector['spec']['config']['topic.heartbeat.prefix']}.{connector['spec']['config']['topic.prefix']}"
        for connector in of_kind(resources, "KafkaConnector")
    }


def test_the_connect_user_may_use_every_transactional_id_of_exactly_once_source(tmp_path: Path, helm: str) -> None:
    """With exactly.once.source.support enabled, Kafka Connect's leader writes the config topic with the
    transactional id connect-cluster-<group.id> (DistributedConfig.transactionalProducerId) and each source task
    writes with <group.id>-<connector>-<task> (Worker.taskTransactionalId): the Connect KafkaUser must allow each
    of them, or the connectors never start (TransactionalIdAuthorizationException)."""
    for security in ("scram-tls", "mtls"):
        answers = {**variant_answers("data-pipelines"), "security": security}
        project = render(answers, tmp_path / security)
        resources = helm_template(helm, project)
        connect = only(resources, "KafkaConnect")
        assert connect["spec"]["config"]["exactly.once.source.support"] == "enabled"
        group = connect["spec"]["groupId"]
        used = {f"connect-cluster-{group}"} | {
            f"{group}-{connector['metadata']['name']}-{task}"
            for connector in of_kind(resources, "KafkaConnector")
            for task in range(int(connector["spec"]["tasksMax"]))
        }
        user = resources[f"KafkaUser/{connect['metadata']['name']}"]
        granted = [
            (acl["resource"]["name"], acl["resource"]["patternType"], set(acl["operations"]))
            for acl in user["spec"]["authorization"]["acls"]
            if acl["resource"]["type"] == "transactionalId"
        ]
        for transactional_id in used:
            assert any(
                {"Write", "Describe"} <= operations
                and (name == transactional_id if pattern == "literal" else transactional_id.startswith(name))
                for name, pattern, operations in granted
            ), (security, transactional_id, granted)


# --- every file a pod's environment names is a file its own volumes provide ----------------------------------------


def pod_specs(resources: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The pod template of every Deployment and Job, by "Kind/name"."""
    return {
        key: doc["spec"]["template"]["spec"]
        for key, doc in resources.items()
        if doc["kind"] in ("Deployment", "Job", "StatefulSet", "DaemonSet")
    }


def environment(container: dict[str, Any], resources: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The plain values a container's environment holds: its ConfigMaps' data, then its own `value`s."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(resources[f"ConfigMap/{source['configMapRef']['name']}"]["data"])
    env.update({item["name"]: item["value"] for item in container.get("env", []) if "value" in item})
    return env


def provided(path: str, container: dict[str, Any], pod: dict[str, Any]) -> bool:
    """Whether the container sees a file (or, for an emptyDir, a writable folder) at path."""
    volumes = {volume["name"]: volume for volume in pod.get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        root = mount["mountPath"].rstrip("/")
        if not path.startswith(root + "/"):
            continue
        relative = path[len(root) + 1 :]
        volume = volumes[mount["name"]]
        source = volume.get("secret") or volume.get("configMap")
        if source is None:
            return "emptyDir" in volume
        items = source.get("items")
        return items is None or relative in {item["path"] for item in items}
    return False


@pytest.mark.parametrize(
    ("variant", "security"),
    [("agent-patterns", "mtls"), ("agent-patterns", "scram-tls"), ("data-pipelines", "mtls"), ("secured", "mtls")],
)
def test_every_pod_mounts_every_file_its_environment_names(
    variant: str, security: str, tmp_path: Path, helm: str
) -> None:
    """The shared ConfigMap names the cluster CA and (mTLS) the client certificate and key by path: each pod that
    reads it, the worker's and every pattern process's as well as the API's, must mount them, or it fails at
    start-up on a missing file."""
    project = render({**variant_answers(variant), "security": security}, tmp_path / "project")
    values = yaml.safe_load((chart_of(project) / "values.yaml").read_text())
    extra = ["--set", "worker.enabled=true"] if "worker" in values else []
    resources = helm_template(helm, project, *extra)
    checked_paths = 0
    for key, pod in pod_specs(resources).items():
        for main in pod["containers"]:
            for name, value in environment(main, resources).items():
                if not value.startswith("/"):
                    continue
                checked_paths += 1
                assert provided(value, main, pod), f"{key}: {name}={value} is no file its volumeMounts provide"
    assert checked_paths, "the render names no file: the test checked nothing"


# --- a first install as the README says it ---------------------------------------------------------------------


def readme_deploy_section(project: Path) -> str:
    readme = (project / "README.md").read_text()
    start = readme.index("## Deploy to Kubernetes")
    end = readme.index("\n## ", start + 1)
    return readme[start:end]


@pytest.mark.parametrize("variant", ["data-pipelines", "agent-patterns", "default"])
def test_the_readmes_install_command_renders_and_names_every_secret_the_chart_reads(
    variant: str, tmp_path: Path, helm: str
) -> None:
    """`helm upgrade --install` exactly as the README's deploy section writes it renders (a value the chart cannot do
    without, such as the image Strimzi builds Kafka Connect into, is in the command), and every Secret the chart's
    pods and hook Jobs read, other than the KafkaUser's that Strimzi writes, is one the section tells how to create,
    with each key they read."""
    from tools.k8s.check import readme_install_values

    project = render(variant_answers(variant), tmp_path / "project")
    section = readme_deploy_section(project)
    chart = chart_of(project)
    proc = subprocess.run(
        [helm, "template", chart.name, str(chart), "--namespace", NAMESPACE, *readme_install_values(project)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, f"the README's install command fails to render:\n{proc.stderr}"
    resources = {f"{d['kind']}/{d['metadata']['name']}": d for d in yaml.safe_load_all(proc.stdout) if d}
    values = yaml.safe_load((chart / "values.yaml").read_text())
    strimzi_secrets = {values["kafka"]["user"]}
    read: dict[str, set[str]] = {}
    for pod in pod_specs(resources).values():
        for main in pod["containers"]:
            for item in main.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref and ref["name"] not in strimzi_secrets:
                    read.setdefault(ref["name"], set()).add(ref["key"])
    for connector in of_kind(resources, "KafkaConnector"):
        for value in connector["spec"]["config"].values():
            for name, key in re.findall(r"\$\{secrets:[^/]+/([^:]+):([^}]+)\}", str(value)):
                read.setdefault(name, set()).add(key)
    for name, keys in read.items():
        (create,) = [
            c for c in re.split(r"\n(?=\S)", section) if c.startswith(f"kubectl create secret generic {name} ")
        ]
        assert {key for key in keys if f"--from-literal={key}=" not in create} == set(), (name, create)
    if variant == "data-pipelines":
        assert read, "the data pipelines read the database Secret"
        for requirement in ("wal_level=logical", "REPLICATION", "own the tables"):
            assert requirement in section, f"the deploy section does not say what PostgreSQL needs: {requirement}"


def test_the_audit_sealer_is_stopped_before_its_replacement_starts(tmp_path: Path, helm: str) -> None:
    """The sealer is a singleton: a rolling update's surge would run two, each fencing the other's transactional
    ids. Recreate stops the old pod first."""
    project = render(variant_answers("agent-patterns"), tmp_path / "project")
    resources = helm_template(helm, project)
    (sealer,) = [d for key, d in resources.items() if key.startswith("Deployment/") and key.endswith("-audit-sealer")]
    assert sealer["spec"]["replicas"] == 1
    assert sealer["spec"]["strategy"] == {"type": "Recreate"}


def test_keda_scales_on_every_topic_the_consumer_reads_and_falls_back_when_lag_is_unreadable(
    tmp_path: Path, helm: str
) -> None:
    """The data pipelines' consumer reads the CDC change topic too: its lag scales the Deployment as the spec's
    consumed topics' does. When KEDA cannot read the lag, minReplicas run; scale-down is stabilized, since
    cooldownPeriod acts only on the way to zero."""
    project = render(variant_answers("data-pipelines"), tmp_path / "project")
    resources = helm_template(helm, project, "--api-versions", "keda.sh/v1alpha1")
    scaled = only(resources, "ScaledObject")
    topics = {trigger["metadata"]["topic"] for trigger in scaled["spec"]["triggers"]}
    assert topics == {"shipments", "customers.changes"}
    values = yaml.safe_load((chart_of(project) / "values.yaml").read_text())
    assert scaled["spec"]["fallback"]["replicas"] == values["autoscaling"]["minReplicas"]
    behavior = scaled["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == values["autoscaling"]["keda"]["cooldownPeriod"]
    for connector in of_kind(resources, "KafkaConnector"):
        assert connector["spec"]["autoRestart"]["enabled"] is True
    assert only(resources, "KafkaConnect")["spec"]["resources"]["limits"]["memory"]


# --- the schema registry's disruption budget and network policy; the app pods' spread ----------------------------


def matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.get("matchLabels", {}).items())


def pod_reads_registry(pod: dict[str, Any], configmaps: set[str]) -> bool:
    """A container names SCHEMA_REGISTRY_URL itself or reads a ConfigMap of the chart (which holds it)."""
    for container in pod["containers"]:
        if any(env["name"] == "SCHEMA_REGISTRY_URL" for env in container.get("env", [])):
            return True
        if any(ref.get("configMapRef", {}).get("name") in configmaps for ref in container.get("envFrom", [])):
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
