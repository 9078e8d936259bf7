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

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from confluent_kafka import Consumer, KafkaException, TopicPartition
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
from tools.render import render
from tools.stack import kafka_stack

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
        elif "fieldRef" in item["valueFrom"]:
            # The downward API: the pod's own name (a Deployment's pod, named after it).
            assert item["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name", item
            env[item["name"]] = f"{key.rpartition('/')[2]}-{uuid.uuid4().hex[:5]}"
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
