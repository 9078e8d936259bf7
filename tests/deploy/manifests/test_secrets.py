"""Secrets and the files they become: the chart reads the KafkaUser's Secret as the `security` answer says, no
secret is in the answers or the repository, every file a pod's environment names is mounted, and the README's
install command names every Secret the chart reads."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.manifests.helpers import (
    NAMESPACE,
    VARIANTS,
    Checked,
    answers_of,
    chart_of,
    container,
    helm_template,
    of_kind,
    service_config,
    service_port,
)
from tools.render import render, variant_answers

pytestmark = pytest.mark.k8s


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_chart_reads_the_kafka_users_secret_as_the_answer_says(variant: str, checked: Checked, helm: str) -> None:
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
def test_no_secret_is_in_the_answers_or_the_repository(variant: str, checked: Checked) -> None:
    out, _, _ = checked
    project = out / variant
    answers = (project / ".copier-answers.yml").read_text().lower()
    assert not re.search(r"password|secret|private key|user\.key", answers)
    for path in project.rglob("*"):
        if path.is_file() and ".venv" not in path.parts and path.suffix in {".yaml", ".yml", ".py", ".env", ".toml"}:
            assert "BEGIN PRIVATE KEY" not in path.read_text(errors="replace"), path


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
