"""The data pipelines on Kubernetes (the database plug-in of the outbox and change data capture): Kafka Connect built
with the Debezium the local stack runs, the connectors the service registers, autoscaling on the change topic too, and
a Connect KafkaUser with only what the worker does."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from tests.deploy.manifests.helpers import (
    NAMESPACE,
    Checked,
    answers_of,
    chart_of,
    helm_template,
    launcher_of,
    of_kind,
    only,
    service_config,
    the_deployment,
)
from tools.render import render, variant_answers

pytestmark = pytest.mark.k8s


def test_kafka_connect_is_built_with_the_debezium_the_stack_runs_and_runs_the_connectors_the_service_registers(
    checked: Checked, helm: str
) -> None:
    out, _, _ = checked
    project = out / "data-pipelines"
    resources = helm_template(helm, project, "--set", "connect.image=registry.invalid/connect:1")
    connect = only(resources, "KafkaConnect")
    assert connect["spec"]["build"]["output"]["image"] == "registry.invalid/connect:1", "the image is a value"
    ((artifact,),) = [plugin["artifacts"] for plugin in connect["spec"]["build"]["plugins"]]
    launcher = launcher_of(project)
    debezium, kafka = launcher.DEBEZIUM_VERSION, launcher.KAFKA_VERSION
    assert artifact == {
        "type": "maven",
        "group": "io.debezium",
        "artifact": "debezium-connector-postgres",
        "version": debezium,
    }
    assert connect["spec"]["version"] == kafka
    assert connect["spec"]["config"]["exactly.once.source.support"] == "enabled"
    # Metrics: Strimzi's JMX exporter with the rules of a ConfigMap of the chart (which
    # tests/patterns/database/test_chart_processes.py runs), scraped by a PodMonitor of the Connect pods where the
    # chart makes monitors.
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
