"""The data pipelines' chart as processes: the database plug-in's migration Job and Kafka Connect, the outbox and
CDC connectors (tests/deploy/chart_processes.py says how a chart runs here)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.chart_processes import (
    NAMESPACE,
    Cluster,
    Pod,
    Release,
    api_pod,
    committed,
    http_ready,
    install,
    installed_project,
    post,
    records,
    secured_stack,
    wait_until,
)
from tools.render import variant_answers
from tools.stack import kafka_stack

pytestmark = [pytest.mark.k8s, pytest.mark.variant]


def connect_properties(connect: dict[str, Any], cluster: Cluster, home: Path, rest_port: int) -> str:
    """The worker configuration Strimzi gives a KafkaConnect: its bootstrap servers, group and topics, its config,
    and its authentication to every client (worker, producers, consumers, admin) from the Secrets it names. The
    KubernetesSecretConfigProvider becomes Kafka's DirectoryConfigProvider over folders laid out as
    <namespace>/<Secret>/<key>, so that ${secrets:<namespace>/<Secret>:<key>} reads the same key of the same Secret."""
    spec = connect["spec"]
    config = {key: str(value) for key, value in spec["config"].items()}
    for key, value in list(config.items()):
        if value == "io.strimzi.kafka.KubernetesSecretConfigProvider":
            config[key] = "org.apache.kafka.common.config.provider.DirectoryConfigProvider"
    client: dict[str, str] = {}
    tls = spec.get("tls")
    if tls:
        (trusted,) = tls["trustedCertificates"]
        ca = home / "cluster-ca.crt"
        ca.write_bytes(cluster.secrets[trusted["secretName"]]["ca.crt"])
        client |= {"ssl.truststore.type": "PEM", "ssl.truststore.location": str(ca)}
    authentication = spec.get("authentication")
    if authentication and authentication["type"] == "scram-sha-512":
        password = cluster.secrets[authentication["passwordSecret"]["secretName"]][
            authentication["passwordSecret"]["password"]
        ].decode()
        client |= {
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{authentication["username"]}" password="{password}";',
        }
    elif authentication and authentication["type"] == "tls":
        pair = authentication["certificateAndKey"]
        store = home / "user-keystore.pem"
        data = cluster.secrets[pair["secretName"]]
        store.write_bytes(data[pair["key"]] + data[pair["certificate"]])
        client |= {"security.protocol": "SSL", "ssl.keystore.type": "PEM", "ssl.keystore.location": str(store)}
    else:
        client |= {"security.protocol": "SSL" if tls else "PLAINTEXT"}
    lines = {
        # Strimzi's defaults for what a KafkaConnect's config leaves out (KafkaConnectConfiguration).
        "key.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "bootstrap.servers": spec["bootstrapServers"],
        "group.id": spec["groupId"],
        "config.storage.topic": spec["configStorageTopic"],
        "offset.storage.topic": spec["offsetStorageTopic"],
        "status.storage.topic": spec["statusStorageTopic"],
        **config,
        **client,
        **{f"{prefix}.{key}": value for prefix in ("producer", "consumer", "admin") for key, value in client.items()},
        "listeners": f"http://127.0.0.1:{rest_port}",
        "rest.advertised.host.name": "127.0.0.1",
        "rest.advertised.port": str(rest_port),
    }
    return "".join(f"{key}={value}\n" for key, value in lines.items())


def start_connect(release: Release, root: Path) -> tuple[Pod, str]:
    """The KafkaConnect as a Connect worker process (the stack's Kafka Connect and Debezium plugin, the versions the
    chart's build names) under its own KafkaUser; then each KafkaConnector created through its REST API, as
    Strimzi's operator does."""
    (connect,) = [doc for doc in release.resources.values() if doc["kind"] == "KafkaConnect"]
    home = root / "connect"
    home.mkdir(parents=True)
    for name, data in release.cluster.secrets.items():
        folder = home / NAMESPACE / name
        folder.mkdir(parents=True)
        for key, value in data.items():
            (folder / key).write_bytes(value)
    piece = kafka_stack.PIECES["connect"](release.cluster.state_dir)
    piece.install()
    port = kafka_stack.free_port()
    properties = connect_properties(connect, release.cluster, home, port)
    properties += f"plugin.path={piece.plugins}\nplugin.discovery=service_load\n"  # type: ignore[attr-defined]
    (home / "connect.properties").write_text(properties)
    # Strimzi's metricsConfig: the JMX exporter agent on port 9404 with the rules of the ConfigMap it names.
    reference = connect["spec"]["metricsConfig"]["valueFrom"]["configMapKeyRef"]
    assert connect["spec"]["metricsConfig"]["type"] == "jmxPrometheusExporter"
    (home / "metrics.yml").write_text(release.resources[f"ConfigMap/{reference['name']}"]["data"][reference["key"]])
    exporter = next(
        kafka_stack.resolve_jars(
            f"jmx-exporter-{kafka_stack.JMX_EXPORTER_VERSION}",
            [f"io.prometheus.jmx:jmx_prometheus_javaagent:{kafka_stack.JMX_EXPORTER_VERSION}"],
        ).glob("jmx_prometheus_javaagent-*.jar")
    )
    metrics_port = kafka_stack.free_port()
    command = [
        piece.java,  # type: ignore[attr-defined]
        f"-javaagent:{exporter}=127.0.0.1:{metrics_port}:{home / 'metrics.yml'}",
        "-Xmx512m",
        f"-Dkafka.stack.dir={release.cluster.state_dir}",
        "-cp",
        f"{piece.libs}/*",  # type: ignore[attr-defined]
        "org.apache.kafka.connect.cli.ConnectDistributed",
        str(home / "connect.properties"),
    ]
    base = {name: os.environ[name] for name in ("PATH", "LANG") if name in os.environ}
    pod = Pod(
        f"KafkaConnect/{connect['metadata']['name']}",
        command,
        base | {"HOME": str(home)},
        home,
        {9404: metrics_port},
        {},
    )
    pod.start()
    return pod, f"http://127.0.0.1:{port}"


def rest(url: str, method: str = "GET", body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        content = answer.read()
        return json.loads(content) if content else None


def connector_state(url: str, name: str) -> str:
    """RUNNING once the connector and each of its tasks run; FAILED (with the trace) once one failed."""
    try:
        status = rest(f"{url}/connectors/{name}/status")
    except OSError:
        return "PENDING"
    states = [status["connector"]["state"]] + [task["state"] for task in status["tasks"]]
    if "FAILED" in states:
        traces = [status["connector"].get("trace", "")] + [task.get("trace", "") for task in status["tasks"]]
        return "FAILED: " + "\n".join(t for t in traces if t)[:3000]
    return "RUNNING" if status["tasks"] and all(state == "RUNNING" for state in states) else "PENDING"


# Each secured answer with a guarantee the data-pipelines variant (at-least-once, plaintext) does not run: Connect
# authenticates as each answer's KafkaUser, and the service's consumer reads the change events as each guarantee does.
SECURED_PIPELINES = [("scram-tls", "at-most-once"), ("mtls", "exactly-once")]


@pytest.mark.parametrize(("security", "guarantee"), SECURED_PIPELINES, ids=[s for s, _ in SECURED_PIPELINES])
def test_a_secured_chart_with_the_outbox_and_change_data_capture_runs_as_its_processes(
    tmp_path: Path, security: str, guarantee: str
) -> None:
    """The secured render of the data pipelines (outbox and CDC): the migration and schema hooks complete, the
    service and Kafka Connect start under their own KafkaUsers, Connect runs both connectors (with exactly-once
    source, its leader writes the config topic as connect-cluster-<group.id>), and a customer's change reaches the
    service's consumer.

    First install: an order POSTed after the migration hook but before any connector exists reaches its topic once
    the outbox connector starts, because the migration made the replication slot and the publication (the outbox
    row is deleted in the transaction that writes it, and the connector snapshots no data). The connectors'
    heartbeats update debezium_heartbeat; after the connectors are gone, `migrate --drop-capture` drops the slots."""
    answers = variant_answers("data-pipelines") | {"security": security, "delivery_guarantee": guarantee}
    project = installed_project(answers, tmp_path / "project")
    # Not under pytest's basetemp: as root, PostgreSQL runs as an unprivileged user that must pass through the
    # folders above its data, and every pytest session that starts (each variant's suite on another worker is one)
    # resets /tmp/pytest-of-root to 0700, cutting a running server off its files.
    state_dir = Path(tempfile.mkdtemp(prefix="kafka-stack-chart-"))
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, state_dir, ignore_errors=True)
        cluster = cleanup.enter_context(secured_stack(state_dir, "postgres"))
        release = install(project, cluster, tmp_path)
        connectors = [doc for doc in release.resources.values() if doc["kind"] == "KafkaConnector"]
        # The migration hook made the outbox's slot (the CDC connector makes its own, right before its snapshot).
        slots = sorted(
            doc["spec"]["config"]["slot.name"]
            for doc in connectors
            if doc["spec"]["config"]["publication.autocreate.mode"] == "disabled"
        )
        assert slots, "the migration made no replication slot"
        assert slots == sorted(
            str(row[0]) for row in database_rows(cluster, "SELECT slot_name FROM pg_replication_slots")
        )
        api = api_pod(release)
        wait_until(f"{api.key} ready", lambda: http_ready(api), release.pods)
        spec = yaml.safe_load((project / "spec.yml").read_text())["spec"]
        (outbox_topic,) = [t for t in spec["topics"] if t["name"] in spec["outbox"]["topics"]]
        event = outbox_topic["events"][0]
        samples = {"string": "chart-1", "long": 7, "int": 7, "boolean": True, "double": 1.5, "float": 1.5}
        body = {"type": event["name"]} | {
            f["name"]: samples[f["type"]] for f in event["fields"] if not f.get("optional")
        }
        # Before Kafka Connect and its connectors exist: only the slot keeps this row's change.
        post(f"http://127.0.0.1:{api.ports[8000]}{outbox_topic['route']}", body)
        beat = database_rows(cluster, "SELECT beat FROM debezium_heartbeat")
        connect, url = start_connect(release, tmp_path / "pods")
        pods = [*release.pods, connect]
        try:
            wait_until("Kafka Connect serves its REST API", lambda: rest_up(url), [connect])
            for doc in connectors:
                config = {"connector.class": doc["spec"]["class"], "tasks.max": str(doc["spec"]["tasksMax"])}
                config |= {key: str(value) for key, value in doc["spec"]["config"].items()}
                try:
                    rest(f"{url}/connectors/{doc['metadata']['name']}/config", "PUT", config)
                except OSError as error:  # the leader could not write the config topic
                    raise AssertionError(f"creating {doc['metadata']['name']}: {error}\n{connect.output()}") from None
            for doc in connectors:
                name = doc["metadata"]["name"]
                wait_until(f"connector {name} runs", lambda name=name: connector_running(url, name), pods)
            wait_until(
                f"the outbox row written before the connector existed is published on {outbox_topic['name']}",
                lambda: len(records(cluster, outbox_topic["name"])) > 0,
                pods,
            )
            insert_customer(cluster, spec)
            changes = spec["cdc"].get("topic", f"{spec['cdc']['table']}.changes")
            wait_until(
                f"the service's group consumes {changes}",
                lambda: committed(cluster, spec["consumer_group"], changes) > 0,
                pods,
            )
            wait_until(
                "a connector's heartbeat updates debezium_heartbeat",
                lambda: database_rows(cluster, "SELECT beat FROM debezium_heartbeat") != beat,
                pods,
            )
            assert len(records(cluster, outbox_topic["name"])) == 1, "the order once, no more"
            # What the KafkaConnectConnectorFailed alert reads, from the rules of the chart's metricsConfig.
            with urllib.request.urlopen(f"http://127.0.0.1:{connect.ports[9404]}/metrics", timeout=30) as answer:
                scraped = answer.read().decode()
            for doc in connectors:
                name = doc["metadata"]["name"]
                assert f'kafka_connect_connector_status{{connector="{name}",status="running"}} 1.0' in scraped, scraped
                assert (
                    f'kafka_connect_connector_task_status{{connector="{name}",status="running",task="0"}} 1.0'
                    in scraped
                ), scraped
                # What DebeziumStreamingBehind reads: Debezium's streaming MBean, named by the connector's prefix.
                prefix = doc["spec"]["config"]["topic.prefix"]
                assert f'debezium_streaming_connected{{connector="{prefix}",plugin="postgres"}} 1.0' in scraped, scraped
                assert re.search(
                    rf'^debezium_streaming_millisecondsbehindsource{{connector="{prefix}",plugin="postgres"}} \d',
                    scraped,
                    re.MULTILINE,
                ), scraped
        finally:
            for pod in pods:
                pod.stop()
        # After `helm uninstall` (the connectors gone): the slots and publications are dropped by the command the
        # docs give.
        env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"} | {
            "DATABASE_URL": cluster.settings["DATABASE_URL"]
        }
        package = yaml.safe_load((project / ".copier-answers.yml").read_text())["package_name"]
        deadline = time.monotonic() + 30
        while database_rows(cluster, "SELECT 1 FROM pg_replication_slots WHERE active") and time.monotonic() < deadline:
            time.sleep(0.5)
        dropped = subprocess.run(
            [str(project / ".venv" / "bin" / "python"), "-m", package, "migrate", "--drop-capture"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert dropped.returncode == 0, dropped.stderr
        assert database_rows(cluster, "SELECT slot_name FROM pg_replication_slots") == []
        assert database_rows(cluster, "SELECT pubname FROM pg_publication") == []


def database_rows(cluster: Cluster, sql: str) -> list[tuple[str | None, ...]]:
    parsed = urllib.parse.urlsplit(cluster.settings["DATABASE_URL"])
    assert parsed.port is not None
    return kafka_stack.postgres_query(parsed.port, parsed.path.lstrip("/"), sql)


def rest_up(url: str) -> bool:
    try:
        rest(f"{url}/connectors")
    except OSError:
        return False
    return True


def connector_running(url: str, name: str) -> bool:
    state = connector_state(url, name)
    assert not state.startswith("FAILED"), f"connector {name} {state}"
    return state == "RUNNING"


def insert_customer(cluster: Cluster, spec: dict[str, Any]) -> None:
    """A row in the captured table, written as any client of the database would (the launcher's own client)."""
    samples = {"string": "'chart'", "long": "424242", "int": "4242", "boolean": "true", "double": "1.5"}
    columns = spec["cdc"]["columns"]
    names = ", ".join(column["name"] for column in columns)
    values = ", ".join(samples[column["type"]] for column in columns)
    parsed = urllib.parse.urlsplit(cluster.settings["DATABASE_URL"])
    assert parsed.port is not None
    kafka_stack.postgres_query(
        parsed.port, parsed.path.lstrip("/"), f"INSERT INTO {spec['cdc']['table']} ({names}) VALUES ({values})"
    )
