"""The chart as processes: what kubeconform cannot see, proven by running what the chart would run.

No cluster is reachable here, but every Deployment and hook Job of a rendered chart is a command, an environment and
mounted files. This takes `helm template` of a render and, on the secured local stack, does what Strimzi and the
kubelet would do:

* each KafkaTopic becomes a topic with its partitions and configs; each KafkaUser a principal with exactly its ACLs
  and its credential (a SCRAM password, or a client certificate from the stack's CA), written as the User Operator
  writes its Secret; the cluster CA is the Secret <cluster>-cluster-ca-cert; the Secrets the README says to create
  are created as it says;
* each hook Job, then each Deployment, runs as a local process with the container's command (the image's CMD when
  it has none), the environment of its ConfigMaps and Secrets, and only the files its own volumeMounts provide: each
  mount is a folder of the pod's own, and a path in the environment under a mount path is rewritten to that folder.
  A path under no mount stays as it is, naming a file that does not exist, as in the pod.

Then each must become ready (or complete) and do its job. The local differences, all in addressing: one host holds
every pod, so the chart is given the stack's addresses as values (kafka.bootstrapServers, schemaRegistry.url) and
each process's ports (the API's, a metrics port) are free ones instead of the container's.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from tests.conftest import admin_config
from tests.patterns import knowledge
from tools.render import render, variant_answers
from tools.stack import kafka_stack

pytestmark = [pytest.mark.k8s, pytest.mark.variant]

NAMESPACE = "team-a"
RELEASE = "{k8s_name}"  # the README's release name: helm upgrade --install <k8s_name> ...
# A bound on each wait, only against a hang: a slow machine waits longer, never fails sooner.
HANG_SECONDS = 300


def helm_binary() -> str:
    from tools.k8s.check import HELM_VERSION, go_install

    return str(go_install("helm.sh/helm/v4/cmd/helm", HELM_VERSION, "helm"))


# ------------------------------------------------------------------------------------- the cluster's part


@dataclass
class Cluster:
    """The secured local stack standing in for the Strimzi cluster, and the Secrets of the namespace."""

    state_dir: Path
    settings: dict[str, str]
    secrets: dict[str, dict[str, bytes]] = field(default_factory=dict)

    def admin(self) -> dict[str, Any]:
        return admin_config(self.settings)


def apply_topics(cluster: Cluster, docs: list[dict[str, Any]]) -> list[str]:
    """As the Topic Operator: each KafkaTopic a topic with its partitions and configs (one replica locally)."""
    topics = [
        NewTopic(
            doc["spec"].get("topicName", doc["metadata"]["name"]),
            doc["spec"].get("partitions", 1),
            1,
            config={key: str(value) for key, value in (doc["spec"].get("config") or {}).items()},
        )
        for doc in docs
        if doc["kind"] == "KafkaTopic"
    ]
    admin = AdminClient(cluster.admin())  # kept while its futures resolve
    for future in admin.create_topics(topics).values():
        try:
            future.result(timeout=60)
        except KafkaException as error:
            if "already exists" not in str(error).lower():
                raise
    return [topic.topic for topic in topics]


RESOURCE_TYPES = {
    "topic": ResourceType.TOPIC,
    "group": ResourceType.GROUP,
    "transactionalId": ResourceType.TRANSACTIONAL_ID,
    "cluster": ResourceType.BROKER,
}
PATTERN_TYPES = {"literal": ResourcePatternType.LITERAL, "prefix": ResourcePatternType.PREFIXED}


def acl_bindings(user: dict[str, Any]) -> list[AclBinding]:
    """A KafkaUser's ACLs, exactly as it lists them, for User:<its name>."""
    principal = f"User:{user['metadata']['name']}"
    bindings = []
    for acl in user["spec"]["authorization"]["acls"]:
        resource = acl["resource"]
        for operation in acl["operations"]:
            bindings.append(
                AclBinding(
                    RESOURCE_TYPES[resource["type"]],
                    resource.get("name", "kafka-cluster"),
                    PATTERN_TYPES[resource.get("patternType", "literal")],
                    principal,
                    "*",
                    AclOperation[re.sub(r"(?<!^)(?=[A-Z])", "_", operation).upper()],
                    AclPermissionType.ALLOW,
                )
            )
    return bindings


def apply_users(cluster: Cluster, docs: list[dict[str, Any]]) -> list[str]:
    """As the User Operator: each KafkaUser a principal with exactly its ACLs, and a Secret of its name holding its
    password (key `password`) or its certificate and key (`user.crt`, `user.key`, and the CA `ca.crt`)."""
    admin = AdminClient(cluster.admin())
    ca = Path(cluster.settings["KAFKA_SSL_CAFILE"]).read_bytes()
    names = []
    for user in (doc for doc in docs if doc["kind"] == "KafkaUser"):
        name = user["metadata"]["name"]
        names.append(name)
        if user["spec"]["authentication"]["type"] == "scram-sha-512":
            password = secrets.token_urlsafe(18)
            credential = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192)
            for done in admin.alter_user_scram_credentials(
                [UserScramCredentialUpsertion(name, credential, password.encode())]
            ).values():
                done.result(timeout=60)
            cluster.secrets[name] = {"password": password.encode()}
            wait_for_login(cluster, name, password)
        else:
            issued = kafka_stack.certificate(cluster.state_dir, name)
            cluster.secrets[name] = {
                "user.crt": Path(issued["KAFKA_SSL_CERTFILE"]).read_bytes(),
                "user.key": Path(issued["KAFKA_SSL_KEYFILE"]).read_bytes(),
                "ca.crt": ca,
            }
        for done in admin.create_acls(acl_bindings(user)).values():
            done.result(timeout=60)
    return names


def wait_for_login(cluster: Cluster, name: str, password: str) -> None:
    """The broker applies a new SCRAM credential from the metadata log a moment after the controller commits it."""
    login = cluster.admin() | {"sasl.username": name, "sasl.password": password}
    deadline = time.monotonic() + HANG_SECONDS
    while True:
        try:
            AdminClient(login).list_topics(timeout=5)
            return
        except KafkaException:
            assert time.monotonic() < deadline, f"{name}'s password is never accepted"
            time.sleep(0.5)


# --------------------------------------------------------------------------------------- the kubelet's part


@dataclass
class Pod:
    """One container of a Deployment or Job, run as a local process."""

    key: str
    command: list[str]
    env: dict[str, str]
    cwd: Path
    ports: dict[int, int]  # container port -> the local port it listens on
    spec: dict[str, Any]
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    def start(self) -> None:
        self.log = self.cwd / "pod.log"
        self.process = subprocess.Popen(
            self.command,
            cwd=self.cwd,
            env=self.env,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log and self.log.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


class MissingSecret(Exception):
    """What the kubelet reports as CreateContainerConfigError: a Secret or key the pod names does not exist."""


def dockerfile_cmd(project: Path) -> list[str]:
    (cmd,) = re.findall(r"^CMD (\[.*\])$", (project / "Dockerfile").read_text(), re.MULTILINE)
    command: list[str] = json.loads(cmd)
    return command


def make_pod(
    key: str,
    pod_spec: dict[str, Any],
    resources: dict[str, dict[str, Any]],
    cluster: Cluster,
    project: Path,
    root: Path,
) -> Pod:
    (container,) = pod_spec["containers"]
    home = root / key.replace("/", "-")
    home.mkdir(parents=True)
    # The volumes: each mount a folder of this pod's own, holding only what the volume provides.
    volumes = {volume["name"]: volume for volume in pod_spec.get("volumes", [])}
    mounts: dict[str, Path] = {}
    for mount in container.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        folder = home / "mounts" / mount["name"]
        folder.mkdir(parents=True)
        if "secret" in volume:
            name = volume["secret"]["secretName"]
            if name not in cluster.secrets:
                raise MissingSecret(f"{key}: volume {mount['name']} names the Secret {name}, which does not exist")
            data = cluster.secrets[name]
            items = volume["secret"].get("items") or [{"key": k, "path": k} for k in data]
            for item in items:
                if item["key"] not in data:
                    raise MissingSecret(f"{key}: the Secret {name} has no key {item['key']}")
                (folder / item["path"]).parent.mkdir(parents=True, exist_ok=True)
                (folder / item["path"]).write_bytes(data[item["key"]])
        else:
            assert "emptyDir" in volume, f"{key}: a volume kind this test does not run: {volume}"
        mounts[mount["mountPath"].rstrip("/")] = folder
    # The environment: the ConfigMaps', then the container's own (plain values and Secret keys).
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env |= resources[f"ConfigMap/{source['configMapRef']['name']}"]["data"]
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            if ref["key"] not in cluster.secrets.get(ref["name"], {}):
                raise MissingSecret(f"{key}: env {item['name']} reads {ref['name']}:{ref['key']}, which does not exist")
            env[item["name"]] = cluster.secrets[ref["name"]][ref["key"]].decode()
    for name, value in env.items():
        for mount_path in sorted(mounts, key=len, reverse=True):
            if value.startswith(mount_path + "/"):
                env[name] = str(mounts[mount_path]) + value[len(mount_path) :]
                break
    # The command: the container's, else the image's; the image's python and uvicorn are the render's.
    command = list(container.get("command") or dockerfile_cmd(project)) + list(container.get("args", []))
    venv = project / ".venv" / "bin"
    command[0] = str(venv / command[0]) if (venv / command[0]).exists() else command[0]
    ports: dict[int, int] = {}
    for port in container.get("ports", []):
        ports[port["containerPort"]] = kafka_stack.free_port()
    if "--port" in command:
        at = command.index("--port") + 1
        command[at] = str(ports[int(command[at])])
    if "METRICS_PORT" in env:
        ports.setdefault(int(env["METRICS_PORT"]), kafka_stack.free_port())
        env["METRICS_PORT"] = str(ports[int(env["METRICS_PORT"])])
    command = [arg.replace("0.0.0.0", "127.0.0.1") for arg in command]
    base = {name: os.environ[name] for name in ("PATH", "LANG", "SSL_CERT_FILE") if name in os.environ}
    return Pod(key, command, base | {"HOME": str(home)} | env, home, ports, container)


def http_ready(pod: Pod) -> bool:
    probe = pod.spec.get("readinessProbe", {}).get("httpGet")
    assert probe is not None
    named = {port["name"]: port["containerPort"] for port in pod.spec.get("ports", []) if "name" in port}
    port = named[probe["port"]] if isinstance(probe["port"], str) else int(probe["port"])
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{pod.ports[port]}{probe['path']}", timeout=10) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def api_pod(release: Release) -> Pod:
    """The API's pod: the one whose readiness is the service's own /health/ready."""
    (api,) = [
        pod
        for pod in release.pods
        if pod.spec.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/health/ready"
    ]
    return api


def wait_until(what: str, condition: Any, pods: list[Pod]) -> None:
    deadline = time.monotonic() + HANG_SECONDS
    while not condition():
        for pod in pods:
            assert pod.process is not None
            if pod.process.poll() is not None:
                raise AssertionError(
                    f"{pod.key} exited ({pod.process.returncode}) while waiting for {what}:\n{pod.output()}"
                )
        assert time.monotonic() < deadline, f"never: {what}\n" + "\n".join(f"{p.key}:\n{p.output()}" for p in pods)
        time.sleep(1)


# ------------------------------------------------------------------------------------------- the release


@dataclass
class Release:
    project: Path
    cluster: Cluster
    resources: dict[str, dict[str, Any]]
    strimzi: list[dict[str, Any]]
    pods: list[Pod] = field(default_factory=list)


def helm_template(project: Path, *values: str) -> dict[str, dict[str, Any]]:
    from tools.k8s.check import readme_install_values

    (chart,) = (p.parent for p in (project / "deploy" / "helm").glob("*/Chart.yaml"))
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    proc = subprocess.run(
        [
            *(helm_binary(), "template", answers["k8s_name"], str(chart), "--namespace", NAMESPACE),
            *readme_install_values(project),
            *values,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in yaml.safe_load_all(proc.stdout) if d}


def readme_secrets(release: Release) -> None:
    """The Secrets the README's deploy section says to create before installing."""
    values = yaml.safe_load(next((release.project / "deploy" / "helm").glob("*/values.yaml")).read_text())
    cluster = release.cluster
    answers = yaml.safe_load((release.project / ".copier-answers.yml").read_text())
    # A plug-in's own (the audit chain's key, the database's login): tests/patterns/<name>/chart.py.
    for part in knowledge("chart").values():
        cluster.secrets |= part.readme_secrets(values, answers, cluster.settings)
    # The cluster CA, as Strimzi keeps it.
    cluster.secrets[f"{values['kafka']['cluster']}-cluster-ca-cert"] = {
        "ca.crt": Path(cluster.settings["KAFKA_SSL_CAFILE"]).read_bytes()
    }


@contextmanager
def secured_stack(state_dir: Path, *pieces: str) -> Iterator[Cluster]:
    """The secured local stack (`up --secure`) with `pieces`, standing in for the Strimzi cluster."""
    try:
        settings = kafka_stack.up(state_dir, ["registry", *pieces], secure=True)
        yield Cluster(state_dir, settings)
    finally:
        kafka_stack.down(state_dir)


def install(project: Path, cluster: Cluster, tmp_path: Path, *values: str) -> Release:
    """`helm install` as processes: the Strimzi resources applied, the hook Jobs run to completion, the Deployments
    started."""
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    bootstrap = cluster.settings[
        "KAFKA_MTLS_BOOTSTRAP_SERVERS" if answers.get("security") == "mtls" else "KAFKA_BOOTSTRAP_SERVERS"
    ]
    resources = helm_template(
        project,
        *("--set", f"kafka.bootstrapServers={bootstrap}"),
        *("--set", f"schemaRegistry.url={cluster.settings['SCHEMA_REGISTRY_URL']}"),
        *values,
    )
    strimzi = [
        doc
        for path in sorted((project / "deploy" / "strimzi" / "base").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]
    strimzi += [doc for doc in resources.values() if doc["kind"] in ("KafkaTopic", "KafkaUser")]
    release = Release(project, cluster, resources, strimzi)
    apply_topics(cluster, strimzi)
    apply_users(cluster, strimzi)
    readme_secrets(release)
    pods_root = tmp_path / "pods"
    jobs = [key for key, doc in resources.items() if doc["kind"] == "Job"]
    for key in jobs:
        pod = make_pod(key, resources[key]["spec"]["template"]["spec"], resources, cluster, project, pods_root)
        pod.start()
        assert pod.process is not None
        try:
            code = pod.process.wait(timeout=resources[key]["spec"].get("activeDeadlineSeconds", HANG_SECONDS))
        except subprocess.TimeoutExpired:
            pod.stop()
            raise AssertionError(f"{key} did not complete:\n{pod.output()}") from None
        assert code == 0, f"{key} failed ({code}):\n{pod.output()}"
    for key, doc in resources.items():
        if doc["kind"] == "Deployment":
            pod = make_pod(key, doc["spec"]["template"]["spec"], resources, cluster, project, pods_root)
            release.pods.append(pod)
            pod.start()
    return release


def committed(cluster: Cluster, group: str, topic: str) -> int:
    """The offsets `group` committed on `topic`, summed over its partitions (read as the admin)."""
    consumer = Consumer(cluster.admin() | {"group.id": group, "enable.auto.commit": False})
    try:
        partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        positions = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=30)
        return sum(max(tp.offset, 0) for tp in positions)
    except KafkaException:  # a coordinator moving or loading: asked again on the next wait
        return 0
    finally:
        consumer.close()


def records(cluster: Cluster, topic: str) -> list[Any]:
    """Every committed record of `topic` so far (read_committed, as the admin)."""
    consumer = Consumer(
        cluster.admin()
        | {
            "group.id": f"chart-processes-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        ends = {}
        for p in partitions:
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
            ends[p] = high
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        out = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            message = consumer.poll(1)
            if message is not None and message.error() is None:
                out.append(message)
            positions = consumer.position([TopicPartition(topic, p) for p in partitions])
            if all(tp.offset >= ends[tp.partition] or ends[tp.partition] == 0 for tp in positions):
                break
        return out
    except KafkaException:  # the topic's leader moving: read again on the next wait
        return []
    finally:
        consumer.close()


def post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 202, answer.status
        result: dict[str, Any] = json.loads(answer.read())
        return result


def curl_example(readme: str) -> tuple[str, dict[str, Any]]:
    (route,) = re.findall(r"curl -i -X POST http://127\.0\.0\.1:8000(/\S+) ", readme)
    (body,) = re.findall(r"-d '(\{.*\})'", readme)
    return route, json.loads(body)


def installed_project(answers: dict[str, Any], dest: Path) -> Path:
    project = render(answers, dest)
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    subprocess.run([uv, "sync", "--quiet", "--no-dev"], cwd=project, env=env, check=True)
    return project


# ------------------------------------------------------------------------------------------------- the runs


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
