"""The generated alerts and dashboard, proven with Prometheus's own tools.

promtool (from Debian's `prometheus` package, see tools/monitoring/prometheus.py) checks every rule and runs the
promtool unit tests each project carries; every dashboard query is parsed by promtool too; and a real Prometheus
scrapes a real service under induced lag until the lag alert fires.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import STACK_VARIABLES
from tools.monitoring.prometheus import bin_dir
from tools.render import render, variant_answers, variant_names

pytestmark = pytest.mark.monitoring

VARIANTS = variant_names()


@pytest.fixture(scope="session")
def prometheus_bin() -> Path:
    return bin_dir()


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    projects: dict[str, Path] = {}

    def get(variant: str) -> Path:
        if variant not in projects:
            projects[variant] = render(variant_answers(variant), tmp_path_factory.mktemp("monitoring") / variant)
        return projects[variant]

    return get


def promtool(prometheus_bin: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(prometheus_bin / "promtool"), *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def alerts(project: Path) -> list[dict[str, Any]]:
    groups = yaml.safe_load((project / "deploy" / "monitoring" / "alerts.rules.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


@pytest.mark.parametrize("variant", VARIANTS)
def test_promtool_accepts_every_rule(prometheus_bin: Path, rendered: Callable[[str], Path], variant: str) -> None:
    monitoring = rendered(variant) / "deploy" / "monitoring"
    result = promtool(prometheus_bin, "check", "rules", "alerts.rules.yml", cwd=monitoring)
    assert result.returncode == 0, result.stdout
    assert f"SUCCESS: {len(alerts(rendered(variant)))} rules found" in result.stdout


@pytest.mark.parametrize("variant", VARIANTS)
def test_promtool_unit_tests_pass(prometheus_bin: Path, rendered: Callable[[str], Path], variant: str) -> None:
    monitoring = rendered(variant) / "deploy" / "monitoring"
    tests = sorted(str(path.relative_to(monitoring)) for path in (monitoring / "tests").glob("*.test.yml"))
    result = promtool(prometheus_bin, "test", "rules", *tests, cwd=monitoring)
    assert result.returncode == 0, result.stdout
    assert result.stdout.count("SUCCESS") == len(tests), result.stdout


def test_every_alert_has_a_unit_test_that_fires_it_and_one_that_does_not(rendered: Callable[[str], Path]) -> None:
    project = rendered("default")
    fired: set[str] = set()
    quiet: set[str] = set()
    for path in (project / "deploy" / "monitoring" / "tests").glob("*.test.yml"):
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                (fired if case.get("exp_alerts") else quiet).add(case["alertname"])
    names = {rule["alert"] for rule in alerts(project)}
    assert names <= fired, f"alerts no test fires: {sorted(names - fired)}"
    assert names <= quiet, f"alerts no test keeps quiet: {sorted(names - quiet)}"


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_prometheusrule_carries_exactly_the_rule_file(rendered: Callable[[str], Path], variant: str) -> None:
    monitoring = rendered(variant) / "deploy" / "monitoring"
    rule = yaml.safe_load((monitoring / "prometheusrule.yaml").read_text())
    assert rule["kind"] == "PrometheusRule"
    assert rule["spec"] == yaml.safe_load((monitoring / "alerts.rules.yml").read_text())


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_alert_links_a_runbook_section_that_names_a_doctor_command(
    rendered: Callable[[str], Path], variant: str
) -> None:
    project = rendered(variant)
    runbook = (project / "RUNBOOK.md").read_text()
    alert_part = runbook.split("\n## Alerts\n", 1)[1].split("\n## ", 1)[0]
    sections = dict(re.findall(r"^### (\w+)\n(.*?)(?=^#|\Z)", alert_part, flags=re.MULTILINE | re.DOTALL))
    for rule in alerts(project):
        name = rule["alert"]
        assert rule["annotations"]["runbook"] == f"RUNBOOK.md#{name.lower()}"
        assert name in sections, f"RUNBOOK.md has no section for {name}"
        for part in ("**Means:**", "**Run:**", "**Fix:**"):
            assert part in sections[name], f"{name}: no {part}"
    names = {rule["alert"] for rule in alerts(project)}
    assert set(sections) == names, "a section for every alert, and only for the alerts this service has"
    # The operations group (certificates, broker disks, Connect) is diagnosed with kubectl and psql, not the doctor.
    groups = yaml.safe_load((project / "deploy" / "monitoring" / "alerts.rules.yml").read_text())["groups"]
    client = {
        rule["alert"] for group in groups if group["name"] != "kafka-events-operations" for rule in group["rules"]
    }
    doctor = [name for name in client if "doctor" in sections[name]]
    assert len(doctor) >= len(client) - 1, "nearly every alert of the service and the brokers is diagnosed with doctor"
    for name in names - client:
        assert "kubectl" in sections[name], f"{name}: no kubectl command"


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_runbooks_producer_settings_are_the_services(rendered: Callable[[str], Path], variant: str) -> None:
    project = rendered(variant)
    # The client module of the service's answer builds the publish path's producer (`publish_producer`, and
    # `publish_tuning` on librdkafka).
    (client,) = project.glob("src/*/kafka/*_client.py")
    source = client.read_text()
    acks = re.search(r"acks\W{1,4}(\w+)", source[source.index("def publish_") :])
    assert acks is not None
    expected = acks.group(1)
    assert f"| `acks` | `{expected}` |" in (project / "RUNBOOK.md").read_text()


def dashboard_queries(project: Path) -> list[str]:
    dashboard = json.loads((project / "deploy" / "monitoring" / "grafana-dashboard.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_dashboard_query_parses(
    prometheus_bin: Path, rendered: Callable[[str], Path], variant: str, tmp_path: Path
) -> None:
    queries = dashboard_queries(rendered(variant))
    assert queries
    # Grafana's variables, as Grafana substitutes them, so that promtool parses what Prometheus will receive.
    grafana = {"$__rate_interval": "1m", "$namespace": ".*", "$job": ".*"}
    rules = []
    for number, query in enumerate(queries):
        for variable, value in grafana.items():
            query = query.replace(variable, value)
        rules.append({"record": f"dashboard:query_{number}", "expr": query})
    (tmp_path / "dashboard.rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = promtool(prometheus_bin, "check", "rules", "dashboard.rules.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_dashboard_panel_has_an_id_of_its_own(rendered: Callable[[str], Path], variant: str) -> None:
    dashboard = json.loads((rendered(variant) / "deploy" / "monitoring" / "grafana-dashboard.json").read_text())
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), sorted(ids)  # Grafana links, edits and embeds a panel by its id


def test_the_dashboard_shows_transactions_only_where_there_are_any(rendered: Callable[[str], Path]) -> None:
    for variant in VARIANTS:
        shown = any("messaging_kafka_transactions_total" in q for q in dashboard_queries(rendered(variant)))
        assert shown == (variant_answers(variant).get("delivery_guarantee") == "exactly-once"), variant


def test_every_metric_an_alert_or_panel_reads_is_one_the_service_or_strimzi_exports(
    rendered: Callable[[str], Path],
) -> None:
    project = rendered("exactly-once")
    source = metrics_source(project)
    defined = set(re.findall(r'^\w+ = (?:Counter|Gauge|Histogram)\(\s*"(\w+)"', source, flags=re.MULTILINE))
    labels = set(re.findall(r'"(messaging_\w+)"', source)) - defined
    exported = {f"{name}_total" for name in defined} | {f"{name}_bucket" for name in defined} | defined
    text = " ".join(dashboard_queries(project)) + " " + " ".join(rule["expr"] for rule in alerts(project))
    used = set(re.findall(r"\b(messaging_\w+)", text)) - labels
    assert used <= exported, f"not exported by the service: {sorted(used - exported)}"


def metrics_source(project: Path) -> str:
    (path,) = project.glob("src/*/observability/metrics.py")
    return path.read_text()


# --- a real Prometheus fires the lag alert ----------------------------------------------------------------------

SERVICE = '''
"""The app on 127.0.0.1, its handler slowed down, and events POSTed to it steadily: its lag grows."""
import asyncio
import sys

import httpx
import uvicorn

from {package}.main import create_app
from {package}.dispatch import Dispatcher
from {package}.events.catalog import CONSUMED_TOPICS
from {package}.settings import Settings
from tests.samples import ROUTES, sample_event


async def slow(self, topic, event):
    await asyncio.sleep(0.5)
    return []


Dispatcher.__call__ = slow


async def main(port: int, group: str) -> None:
    settings = Settings(kafka_consumer_group=group, metrics_lag_interval_seconds=1, consumer_max_records=5)
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    topic = CONSUMED_TOPICS[0]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{{port}}", timeout=30) as client:
        while not server.started:
            await asyncio.sleep(0.1)
        for _ in range(4000):  # bounded: about 20 events a second for at most about 200 s
            if server.should_exit:  # SIGTERM (the test is over): stop posting and let the app shut down
                break
            await client.post(ROUTES[topic.name], json=sample_event(topic).model_dump(mode="json"))
            await asyncio.sleep(0.05)
    server.should_exit = True
    await serving


asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
'''


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def uv() -> str:
    return shutil.which("uv") or str(Path(sys.executable).parent / "uv")


@pytest.fixture
def lagging_service(rendered: Callable[[str], Path], stack_settings: dict[str, str]) -> Iterator[int]:
    """A rendered default service under induced lag; yields its HTTP port."""
    project = rendered("default")
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", *STACK_VARIABLES}}
    subprocess.run([uv(), "sync", "--quiet"], cwd=project, env=env, check=True)
    (package,) = (path.parent.name for path in project.glob("src/*/__init__.py"))
    (project / "lagging_service.py").write_text(SERVICE.format(package=package))
    port = free_port()
    service = subprocess.Popen(
        [uv(), "run", "python", "lagging_service.py", str(port), f"monitoring-e2e-{port}"],
        cwd=project,
        env=env | stack_settings | {"PYTHONPATH": str(project)},
        start_new_session=True,
    )
    try:
        yield port
    finally:
        os.killpg(service.pid, signal.SIGTERM)
        try:
            service.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(service.pid, signal.SIGKILL)
            service.wait()


def quick_rules(rule_file: Path, target: Path) -> None:
    """The project's rules with every `for` shortened to seconds: the same expressions, fired within a test."""
    target.write_text(re.sub(r"^(\s+for:) \S+$", r"\1 5s", rule_file.read_text(), flags=re.MULTILINE))


def test_a_real_prometheus_fires_the_lag_alert_for_a_lagging_service(
    prometheus_bin: Path, rendered: Callable[[str], Path], lagging_service: int, tmp_path: Path
) -> None:
    quick_rules(rendered("default") / "deploy" / "monitoring" / "alerts.rules.yml", tmp_path / "alerts.rules.yml")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": ["alerts.rules.yml"],
        "scrape_configs": [
            {
                "job_name": "lagging-service",
                "static_configs": [{"targets": [f"127.0.0.1:{lagging_service}"], "labels": {"namespace": "e2e"}}],
            }
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    prometheus = subprocess.Popen(
        [
            str(prometheus_bin / "prometheus"),
            "--config.file=prometheus.yml",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "prometheus.log").open("w"),
    )
    try:
        firing = wait_for_alert(port, "KafkaConsumerLagGrowing", within=240)
    finally:
        prometheus.send_signal(signal.SIGTERM)
        prometheus.wait(timeout=60)
    assert firing["labels"]["job"] == "lagging-service"
    assert firing["labels"]["namespace"] == "e2e"
    assert float(firing["value"]) > 100
    assert firing["annotations"]["runbook"] == "RUNBOOK.md#kafkaconsumerlaggrowing"


def wait_for_alert(port: int, name: str, within: float) -> dict[str, Any]:
    """The alert `name` once Prometheus reports it firing; fails with what it reported last after `within` s."""
    deadline = time.monotonic() + within
    seen: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/alerts", timeout=5) as response:
                seen = json.load(response)["data"]["alerts"]
        except OSError:
            seen = []
        for alert in seen:
            if alert["labels"]["alertname"] == name and alert["state"] == "firing":
                return dict(alert)
        time.sleep(1)
    raise AssertionError(f"{name} did not fire within {within:g} s; alerts: {seen}")
