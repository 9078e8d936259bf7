"""What the tests of the rendered Kubernetes manifests share: the checker's run, the rendered projects' answers,
`helm template` of a chart and the objects in it.

tools/k8s/check.py renders every variant and checks it with helm and kubeconform against Kubernetes and CRD schemas
(see docs/kubernetes.md); its first run installs the tools into ~/.cache/kafka-events, later runs reuse them.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from tests.patterns import PATTERNS, knowledge

Checked = tuple[Path, subprocess.CompletedProcess[str], dict[str, Any]]
"""The `checked` fixture: the folder every variant was rendered in, the checker's process and its report."""


REPO = Path(__file__).resolve().parents[3]


VARIANTS = sorted(p.stem for p in (REPO / "tests" / "variants").glob("*.yml"))


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


# Pods of the chosen patterns' processes run Deployments of their own, each with a component named after its pattern.
PATTERN_COMPONENTS = tuple(f"{name}-" for name in PATTERNS)


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


def launcher_of(project: Path) -> ModuleType:
    """The project's own copy of the local stack launcher (scripts/kafka_stack.py, standard library only), imported:
    the versions it runs are its constants."""
    name = f"rendered_kafka_stack_{abs(hash(project))}"
    spec = importlib.util.spec_from_file_location(name, project / "scripts" / "kafka_stack.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up while they are defined
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (main,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(main)


def consumes(project: Path) -> bool:
    return "worker" in yaml.safe_load((chart_of(project) / "values.yaml").read_text())


def pattern_components(project: Path) -> dict[str, list[str]]:
    """The components of the pattern processes the answers choose, each with the arguments of its command (from
    tests/patterns/<name>/manifests.py)."""
    answers = answers_of(project)
    chosen = knowledge("manifests", answers.get("patterns") or [])
    return {component: args for pattern in chosen.values() for component, args in pattern.components(answers).items()}


def secret_settings() -> dict[str, str]:
    """Settings only one pattern process holds, from a Secret, by the component that holds each."""
    return {
        name: holder for pattern in knowledge("manifests").values() for name, holder in pattern.SECRET_SETTINGS.items()
    }
