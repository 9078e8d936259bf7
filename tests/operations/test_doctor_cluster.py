"""`doctor describe` on a three-node cluster (`kafka_stack.py up --brokers 3`) with one node stopped: it names the
offline partitions, those under min.insync.replicas and the under-replicated ones, with the broker missing from their
in-sync replicas, in the same words on either client answer; and the same cluster, whole, healthy. Meanwhile a real
Prometheus scrapes the nodes' metrics (the JMX exporter with Strimzi's rules) and fires the project's Kafka alerts."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.conftest import STACK_VARIABLES, stack_command
from tests.operations.test_monitoring import free_port, quick_rules, wait_for_alert
from tools.monitoring.prometheus import bin_dir
from tools.render import render, variant_answers

TOPIC = "agent.tasks"  # the default variant's topic; its dead letters go to agent.tasks.dlq


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """A three-node stack of its own (a node of it gets stopped); its state folder and settings."""
    state_dir = tmp_path_factory.mktemp("cluster")
    up = subprocess.run(
        [*stack_command(state_dir), "up", "--brokers", "3"], stdout=subprocess.PIPE, text=True, check=True
    )
    settings = dict(line.split("=", 1) for line in up.stdout.split())
    try:
        yield state_dir, settings
    finally:
        subprocess.run([*stack_command(state_dir), "down"], check=True)


@pytest.fixture
def prometheus(cluster: tuple[Path, dict[str, str]], project: Path, tmp_path: Path) -> Iterator[int]:
    """A real Prometheus scraping the three nodes, with the project's alerts (`for` shortened); yields its port."""
    _, settings = cluster
    quick_rules(project / "deploy" / "monitoring" / "alerts.rules.yml", tmp_path / "alerts.rules.yml")
    nodes = [
        {
            "targets": [url.removeprefix("http://").removesuffix("/metrics")],
            # The labels Strimzi's PodMonitor gives its pods, which the alerts group by.
            "labels": {"namespace": "local", "pod": f"c-kafka-{n}", "kubernetes_pod_name": f"c-kafka-{n}"}
            | {"strimzi_io_name": "c-kafka"},
        }
        for n, url in enumerate(settings["KAFKA_METRICS"].split(","))
    ]
    config = {
        # A scrape of a busy broker can take a second on two cores: scrapes must not time out.
        "global": {"scrape_interval": "2s", "scrape_timeout": "2s", "evaluation_interval": "1s"},
        "rule_files": ["alerts.rules.yml"],
        "scrape_configs": [{"job_name": "kafka", "static_configs": nodes}],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    process = subprocess.Popen(
        [
            str(bin_dir() / "prometheus"),
            "--config.file=prometheus.yml",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "prometheus.log").open("w"),
    )
    try:
        yield port
    finally:
        process.terminate()
        process.wait(timeout=60)


CLIENTS = ("aiokafka", "confluent-kafka")
"""The answers doctor must read the cluster alike on."""


def render_default(tmp_path_factory: pytest.TempPathFactory, client: str) -> Path:
    dest = render(variant_answers("default") | {"kafka_client": client}, tmp_path_factory.mktemp("doctor") / "default")
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    subprocess.run([uv, "sync", "--quiet"], cwd=dest, env=clean_env(), check=True)
    return dest


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The default variant rendered on each client."""
    return {client: render_default(tmp_path_factory, client) for client in CLIENTS}


@pytest.fixture(scope="module")
def project(projects: dict[str, Path]) -> Path:
    return projects["aiokafka"]


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", *STACK_VARIABLES}}


def doctor(project: Path, bootstrap: str, *args: str) -> tuple[int, str]:
    """`python -m <package> doctor ARGS` in the project's environment, against `bootstrap`."""
    (package,) = (path.parent.name for path in project.glob("src/*/__init__.py"))
    result = subprocess.run(
        [str(project / ".venv" / "bin" / "python"), "-m", package, "doctor", *args],
        cwd=project,
        env=clean_env() | {"KAFKA_BOOTSTRAP_SERVERS": bootstrap},
        stdout=subprocess.PIPE,
        text=True,
        timeout=120,
    )
    return result.returncode, result.stdout


async def create_topics(bootstrap: str) -> None:
    """The service's topics, placed so that stopping node 3 shows every condition at once: agent.tasks has two
    replicas per partition (those on node 3 fall under min.insync.replicas 2), its dead-letter topic one replica,
    on node 3 (offline)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        pairs = [[1, 2], [2, 1], [1, 3], [3, 1], [2, 3], [3, 2]]
        await admin.create_topics(
            [
                NewTopic(TOPIC, -1, -1, replica_assignments=dict(enumerate(pairs))),
                NewTopic(
                    f"{TOPIC}.dlq",
                    -1,
                    -1,
                    replica_assignments={p: [3] for p in range(6)},
                    topic_configs={"min.insync.replicas": "1"},
                ),
            ]
        )
    finally:
        await admin.close()


def findings(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {finding["title"].split(":")[0]: finding for finding in report["findings"]}


def test_doctor_names_offline_under_min_isr_and_under_replicated_partitions_when_a_node_stops(
    cluster: tuple[Path, dict[str, str]], projects: dict[str, Path], prometheus: int
) -> None:
    state_dir, settings = cluster
    bootstrap = settings["KAFKA_BOOTSTRAP_SERVERS"]
    asyncio.run(create_topics(bootstrap))
    for client, project in projects.items():
        code, out = doctor(project, bootstrap, "describe", "--json")
        assert code == 0, (client, out)
        assert [(f["check"], f["severity"]) for f in json.loads(out)["findings"]] == [("describe", "ok")], client

    subprocess.run([*stack_command(state_dir), "stop", "kafka-3"], check=True)
    texts: dict[str, str] = {}
    for client, project in projects.items():
        # The controller fences the stopped node and shrinks the ISRs: wait for doctor to see all three conditions.
        deadline = time.monotonic() + 90
        while True:
            code, out = doctor(project, bootstrap, "describe", "--json")
            seen = findings(json.loads(out))
            if {"offline", "under min ISR", "under-replicated"} <= set(seen) or time.monotonic() > deadline:
                break
            time.sleep(2)
        assert code == 1, (client, out)
        offline, under_min, under = seen["offline"], seen["under min ISR"], seen["under-replicated"]
        assert offline["severity"] == under_min["severity"] == "error"
        assert under["severity"] == "warning"
        assert offline["title"] == "offline: 6 partition(s) have no leader"
        assert all(detail.startswith(f"{TOPIC}.dlq[") for detail in offline["details"])
        assert under_min["title"].startswith("under min ISR: 4 partition(s)")
        assert f"{TOPIC}[2] in sync [1] < min.insync.replicas 2" in under_min["details"]
        assert f"{TOPIC}[2] leader 1, replicas [1, 3], missing from ISR: [3]" in under["details"]
        assert "Broker(s) 3 are not in the cluster." in under["why"]
        assert f"{TOPIC}[0]" not in " ".join(under["details"]), "a partition without a replica on node 3 is fine"

        # What a person sees.
        code, texts[client] = doctor(project, bootstrap, "describe")
        assert code == 1
        assert "[FAIL] offline: 6 partition(s) have no leader" in texts[client]
        assert "[WARN] under-replicated: 4 partition(s)" in texts[client]
    assert texts["confluent-kafka"] == texts["aiokafka"], "doctor says the same on either client"

    # And what Prometheus makes of the brokers' own metrics: the project's Kafka alerts fire.
    for alert in ("KafkaUnderReplicatedPartitions", "KafkaUnderMinIsrPartitions", "KafkaOfflinePartitions"):
        firing = wait_for_alert(prometheus, alert, within=120)
        assert firing["labels"]["namespace"] == "local"
