"""The agent patterns' chart as processes (tests/deploy/chart_processes.py says how a chart runs here)."""

from __future__ import annotations

import re
import subprocess
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from confluent_kafka import Producer

from tests.deploy.chart_processes import (
    HANG_SECONDS,
    Cluster,
    Pod,
    Release,
    api_pod,
    committed,
    curl_example,
    http_ready,
    install,
    installed_project,
    post,
    records,
    secured_stack,
    wait_until,
)
from tests.patterns import knowledge
from tools.render import variant_answers

pytestmark = [pytest.mark.k8s, pytest.mark.variant]


def test_an_mtls_chart_with_a_worker_and_every_pattern_runs_as_its_processes(tmp_path: Path) -> None:
    """The mTLS render of the agent patterns: each Deployment starts with only what its pod would have, the API takes
    a POST, and every consumer group of the service's KafkaUser (the worker's and each pattern process's) moves past
    what the POSTs gave it."""
    answers = variant_answers("agent-patterns") | {"security": "mtls"}
    project = installed_project(answers, tmp_path / "project")
    with secured_stack(tmp_path / "stack") as cluster:
        run_agent_patterns(project, cluster, tmp_path)


def run_agent_patterns(project: Path, secured_stack: Cluster, tmp_path: Path) -> None:
    release = install(project, secured_stack, tmp_path, "--set", "worker.enabled=true")
    try:
        api = api_pod(release)
        wait_until(f"{api.key} ready", lambda: http_ready(api), release.pods)
        readme = (project / "README.md").read_text()
        route, body = curl_example(readme)
        base = f"http://127.0.0.1:{api.ports[8000]}"
        post(base + route, body)
        for pattern in chosen_patterns(release).values():
            pattern.start_work(readme, lambda path, body: post(base + path, body))
        (user,) = [doc for doc in release.strimzi if doc["kind"] == "KafkaUser"]
        # The replay group is an operator's (`dlq replay`, run by hand), not a Deployment's: it commits only below.
        groups = {
            acl["resource"]["name"]: None
            for acl in user["spec"]["authorization"]["acls"]
            if acl["resource"]["type"] == "group" and not acl["resource"]["name"].endswith(".dlq-replay")
        }
        read_topics = group_topics(release)
        for group in groups:
            topic = read_topics[group]
            wait_until(
                f"group {group} commits on {topic}",
                lambda group=group, topic=topic: committed(secured_stack, group, topic) > 0,
                release.pods,
            )
        pattern_processes_serve_their_metrics(release)
        replay_in_the_worker_pod(release, secured_stack)
        for pod in release.pods:
            assert pod.process is not None
            assert pod.process.poll() is None, f"{pod.key} exited:\n{pod.output()}"
    finally:
        for pod in release.pods:
            pod.stop()


def chosen_patterns(release: Release) -> dict[str, ModuleType]:
    """What this test knows of each chosen pattern's processes (tests/patterns/<name>/chart.py)."""
    answers = yaml.safe_load((release.project / ".copier-answers.yml").read_text())
    return knowledge("chart", answers.get("patterns") or [])


def pattern_processes_serve_their_metrics(release: Release) -> None:
    """Each pattern process serves /metrics on its pod's metrics port once its consumer has started: what its
    readiness probe asks and its PodMonitor scrapes, with a series of its own work (by its container's name, the
    Deployment's component)."""
    series = {prefix: wanted for part in chosen_patterns(release).values() for prefix, wanted in part.SERIES.items()}
    assert series, "the chosen patterns' processes, each with a series of its own (tests/patterns/<name>/chart.py)"
    pods = {pod.spec["name"]: pod for pod in release.pods}
    found = {prefix: [name for name in pods if name.startswith(prefix)] for prefix in series}
    assert all(found.values()), f"a Deployment per pattern process: {sorted(pods)}"
    for prefix, names in found.items():
        for name in names:
            pod = pods[name]
            wait_until(f"{pod.key} ready", lambda pod=pod: http_ready(pod), release.pods)
            wait_until(
                f"{pod.key} exports {series[prefix]}",
                lambda pod=pod, prefix=prefix: re.search(series[prefix], scrape(pod), re.MULTILINE),
                release.pods,
            )


def scrape(pod: Pod) -> str:
    (port,) = [port["containerPort"] for port in pod.spec["ports"] if port["name"] == "metrics"]
    with urllib.request.urlopen(f"http://127.0.0.1:{pod.ports[port]}/metrics", timeout=10) as answer:
        return str(answer.read().decode())


def replay_in_the_worker_pod(release: Release, cluster: Cluster) -> None:
    """`kubectl exec deploy/<worker> -- python -m <package> dlq replay`, as an operator runs it: a record the worker
    cannot decode is dead-lettered; the replay, run with the worker pod's environment and files (its principal and
    ACLs, the replay group's among them), puts it back on its topic and commits its group past it."""
    spec = yaml.safe_load((release.project / "spec.yml").read_text())["spec"]
    topic = next(t["name"] for t in spec["topics"] if t.get("consumed", True))
    key = f"chart-replay-{uuid.uuid4().hex[:8]}".encode()
    (worker,) = [pod for pod in release.pods if pod.command[-1] == "worker"]
    producer = Producer(cluster.admin())
    producer.produce(topic, value=b"not an event", key=key)
    assert producer.flush(30) == 0
    dead = f"{topic}.dlq"
    wait_until(
        f"{worker.key} dead-letters the record",
        lambda: any(message.key() == key for message in records(cluster, dead)),
        release.pods,
    )
    replay = subprocess.run(
        [*worker.command[:-1], "dlq", "replay"],
        cwd=worker.cwd,
        env=worker.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=HANG_SECONDS,
        check=False,
    )
    assert replay.returncode == 0, f"dlq replay in {worker.key} exited {replay.returncode}:\n{replay.stdout[-4000:]}"
    replayed = [
        message
        for message in records(cluster, topic)
        if message.key() == key and any(name == "dlq.replayed.from" for name, _ in message.headers() or [])
    ]
    assert replayed, f"no replayed copy of the dead letter on {topic}:\n{replay.stdout[-4000:]}"
    assert committed(cluster, f"{spec['consumer_group']}.dlq-replay", dead) > 0


def group_topics(release: Release) -> dict[str, str]:
    """Each consumer group of the render and the topic it reads first (from the spec's model as the chart
    renders it: the ConfigMap and the KafkaUser's ACLs)."""
    (user,) = [doc for doc in release.strimzi if doc["kind"] == "KafkaUser"]
    acls = user["spec"]["authorization"]["acls"]
    readable = [
        acl["resource"]["name"] for acl in acls if acl["resource"]["type"] == "topic" and "Read" in acl["operations"]
    ]
    spec = yaml.safe_load((release.project / "spec.yml").read_text())["spec"]
    consumed = [t["name"] for t in spec["topics"] if t.get("consumed", True)]
    patterns = chosen_patterns(release).values()
    out: dict[str, str] = {}
    for acl in acls:
        if acl["resource"]["type"] != "group":
            continue
        group = acl["resource"]["name"]
        if group == spec["consumer_group"]:
            out[group] = consumed[0]
            continue
        if group == spec["consumer_group"] + ".dlq-replay":  # an operator's (`dlq replay`), no Deployment's
            continue
        # A pattern process's group: the pattern that owns it knows what it reads.
        (out[group],) = [t for t in (p.group_topic(group, spec, readable) for p in patterns) if t is not None]
    return out


# ------------------------------------------------------------------------- Kafka Connect, as Strimzi runs it
