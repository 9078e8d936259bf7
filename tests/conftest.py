"""One real local stack for the whole test session, started from the very launcher every generated project carries.

Under pytest-xdist (`make test` runs `-n $(TEST_WORKERS)`) every worker has a session of its own, so a stack of
its own: the variants' suites write fixed topic names (agent.tasks) and some assert what a topic gained during a
test, which a variant running at the same time on a shared broker would break.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from xdist.scheduler import LoadScopeScheduling

from tests.deploy.manifests.helpers import Checked, run_check
from tools.render import variant_answers

REPO = Path(__file__).resolve().parents[1]
STACK = REPO / "template" / "scripts" / "kafka_stack.py"
STACK_VARIABLES = ("KAFKA_BOOTSTRAP_SERVERS", "SCHEMA_REGISTRY_URL")
# What `up --secure` prints besides: the CA, the admin (a super user), the client-certificate listener.
SECURE_STACK_VARIABLES = (
    *STACK_VARIABLES,
    "KAFKA_SSL_CAFILE",
    "KAFKA_ADMIN_USERNAME",
    "KAFKA_ADMIN_PASSWORD",
    "KAFKA_MTLS_BOOTSTRAP_SERVERS",
    "KAFKA_STACK_DIR",
)


# Every stack of a test session starts often and works little: the JVMs' quick compiler and the serial collector
# halve their CPU (measured: a broker and registry through the default variant's suite, 29.7 s of CPU against 15.1 s),
# and a 2-core machine spends the difference on the tests. Inherited by every stack a test starts, chaos lanes too.
TEST_STACK_JAVA_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("KAFKA_STACK_JAVA_OPTIONS", TEST_STACK_JAVA_OPTIONS)
    # The session starts Python thousands of times in the same virtual environments (the covering array's renders
    # share one, the chaos rows restart their services after each kill): with bytecode kept, each compiles what it
    # imports once, not every time (the unit tests of a render: 13 s of CPU against 6.6 s).
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


# Modules whose tests share a fixture of their own wider than a test (a stack with PostgreSQL and Connect, a
# three-node cluster, Prometheus's renders), and folders whose modules share one in their conftest.py (the helm check
# of every variant): kept on one worker so that it is set up once. The tests of any other module go one by one to
# whichever worker is free.
SHARED_FIXTURE_MODULES = {"test_monitoring.py", "test_stack_connect.py", "test_doctor_cluster.py"}
MANIFESTS = "tests/deploy/manifests"
SHARED_FIXTURE_FOLDERS = {MANIFESTS}
# Each plug-in's own manifest tests (tests/patterns/<name>/test_manifests.py) read the same renders: the same group.
PATTERN_MANIFESTS = ("tests/patterns/", "test_manifests.py")


def work_group(nodeid: str) -> str:
    """The share of work a test belongs to: its variant's in the variant matrix (one render, one install, one
    worker per variant; a worker that runs a secured variant starts a secured stack of its own), its folder's or its
    module's if they share a fixture, else the test alone."""
    path, _, name = nodeid.partition("::")
    module = Path(path).name
    variant = re.search(r"\[([^\]]+)\]$", name) if module == "test_variants.py" else None
    if variant is not None:
        return f"variant-{variant[1]}"
    folder = Path(path).parent.as_posix()
    if folder in SHARED_FIXTURE_FOLDERS:
        return folder
    if path.startswith(PATTERN_MANIFESTS[0]) and module == PATTERN_MANIFESTS[1]:
        return MANIFESTS
    return path if module in SHARED_FIXTURE_MODULES else nodeid


class WorkGroupScheduling(LoadScopeScheduling):  # type: ignore[misc]  # xdist ships no type information
    """xdist's scope scheduling with `work_group` as the scope: each group goes whole to the next free worker, in
    collection order. (`--dist loadgroup` does this from xdist_group marks, but pytest 9.2 dropped the node-id
    rewrite it relies on: pytest-dev/pytest-xdist#1386.)"""

    def _split_scope(self, nodeid: str) -> str:
        return work_group(nodeid)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> WorkGroupScheduling:
    config.option.loadscopereorder = False  # keep the order below, not xdist's by number of tests
    return WorkGroupScheduling(config, log)


# The covering array's renders: each its own group (they share nothing), a minute or two apiece.
COMBINATIONS_MODULE = "test_combinations.py"
# The chaos lanes, a quarter of an hour each, and the tests of a few minutes each: started before the short ones.
CHAOS_MODULE = "test_chaos.py"
LONG_MODULES = {"test_chart_processes.py", "test_update.py", "test_stack.py"}


def variant_weight(name: str) -> int:
    """How long a variant's suite runs, roughly: each pattern brings a module of tests, a secured stack and
    exactly-once transactions slow every one."""
    answers = variant_answers(name)
    patterns: list[str] = answers.get("patterns", [])
    secured: bool = answers.get("security", "none") != "none"
    transactional: bool = answers.get("delivery_guarantee") == "exactly-once"
    return 2 * len(patterns) + secured + transactional


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest groups first, so that the chaos lanes and the few-minute variant suites start at once and the
    other tests fill the gaps: the chaos lanes, then the variants (the longest suites first), then the tests of a
    few minutes, then the covering array's renders one by one, then the rest as collected."""
    groups = [work_group(item.nodeid) for item in items]
    first_seen = {group: index for index, group in reversed(list(enumerate(groups)))}

    def rank(group: str) -> tuple[int, int]:
        module = Path(group.partition("::")[0]).name
        if module == CHAOS_MODULE:
            return 0, first_seen[group]
        if group.startswith("variant-"):
            return 1, -variant_weight(group.removeprefix("variant-"))
        if module in LONG_MODULES:
            return 2, first_seen[group]
        combination = module == COMBINATIONS_MODULE and "[" in group
        return (3 if combination else 4), first_seen[group]

    order = sorted(range(len(items)), key=lambda index: rank(groups[index]))
    items[:] = [items[index] for index in order]


def stack_command(state_dir: Path) -> list[str]:
    return [sys.executable, str(STACK), "--state-dir", str(state_dir)]


def start_stack(state_dir: Path, *options: str) -> dict[str, str]:
    """`up` the broker and the schema registry in `state_dir`; return the settings the launcher prints."""
    up = subprocess.run(
        [*stack_command(state_dir), "up", "--with", "registry", *options], stdout=subprocess.PIPE, text=True, check=True
    )
    return dict(line.split("=", 1) for line in up.stdout.split())


@pytest.fixture(scope="session")
def stack_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Settings of a running stack: the caller's (KAFKA_BOOTSTRAP_SERVERS set), else one started for the session."""
    if all(os.environ.get(key) for key in STACK_VARIABLES):
        yield {key: os.environ[key] for key in STACK_VARIABLES if key in os.environ}
        return
    state_dir = tmp_path_factory.mktemp("stack")
    settings = start_stack(state_dir)
    try:
        yield settings
    finally:
        subprocess.run([*stack_command(state_dir), "down"], check=True)


@pytest.fixture(scope="session")
def secure_stack_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Settings of a secured stack (`up --secure`: SCRAM over TLS, mTLS, ACLs enforced), for the variants whose
    `security` answer is not none: the caller's (KAFKA_ADMIN_USERNAME set too), else one started for the session."""
    if all(os.environ.get(key) for key in SECURE_STACK_VARIABLES):
        yield {key: os.environ[key] for key in SECURE_STACK_VARIABLES}
        return
    state_dir = tmp_path_factory.mktemp("secure-stack")
    try:
        yield start_stack(state_dir, "--secure")
    finally:
        subprocess.run([*stack_command(state_dir), "down"], check=True)


def admin_config(settings: dict[str, str]) -> dict[str, str | int | float | bool]:
    """librdkafka settings for the stack `settings` name: as its super user on a secured stack."""
    config: dict[str, str | int | float | bool] = {"bootstrap.servers": settings["KAFKA_BOOTSTRAP_SERVERS"]}
    if settings.get("KAFKA_ADMIN_USERNAME"):
        config |= {
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": settings["KAFKA_ADMIN_USERNAME"],
            "sasl.password": settings["KAFKA_ADMIN_PASSWORD"],
            "ssl.ca.location": settings["KAFKA_SSL_CAFILE"],
        }
    return config


def admin_client(settings: dict[str, str]) -> AdminClient:
    return AdminClient(admin_config(settings))


def clean_slate(settings: dict[str, str]) -> None:
    """Delete every topic and consumer group on the stack, so that the next variant's suite meets the broker a fresh
    project's `make test` meets. Variants share topic names (agent.tasks) but not schemas: another service's records
    on a topic are poison to this one, and each test's new group would dead-letter all of them first."""
    admin = admin_client(settings)
    topics = [name for name in admin.list_topics(timeout=30).topics if not name.startswith("_")]
    if topics:
        for future in admin.delete_topics(topics, operation_timeout=60).values():
            future.result()
    groups = [group.group_id for group in admin.list_consumer_groups(request_timeout=30).result().valid]
    if groups:
        for future in admin.delete_consumer_groups(groups, request_timeout=30).values():
            # A group with members left (none should be) is refused; it keeps no offsets of a deleted topic.
            with contextlib.suppress(KafkaException):
                future.result()
    deadline = time.monotonic() + 60
    while set(topics) & set(admin.list_topics(timeout=30).topics):
        assert time.monotonic() < deadline, "deleted topics are still listed after a minute"
        time.sleep(0.5)


ASYNCAPI_INSTALL = [
    "npm",
    "ci",
    "--prefix",
    "tools/asyncapi",
    "--ignore-scripts",
    "--no-audit",
    "--no-fund",
    "--silent",
]
"""What `make install` adds to a project: the official AsyncAPI parser, which its unit tests run on asyncapi.yaml."""


@pytest.fixture(scope="session")
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One mypy cache for every project a worker type-checks (variants, covering-array rows, updated projects), one
    after another: mypy re-checks what differs (each project's own modules) and reuses what is the same (the
    libraries every render imports), as it would in a user's project between runs. A cold run costs five times the
    CPU of a warm one."""
    return str(tmp_path_factory.mktemp("mypy-cache"))


@pytest.fixture(scope="session")
def installed_parsers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where a worker keeps the AsyncAPI parser it installed, one per lock file (see `install_asyncapi_parser`)."""
    return tmp_path_factory.mktemp("asyncapi-parsers")


def install_asyncapi_parser(project: Path, installed: Path, env: dict[str, str] | None = None) -> None:
    """`npm ci` the project's AsyncAPI parser the first time a worker meets its package-lock.json; later projects
    with the same lock file get hard links to that node_modules. Every render pins the same lock file, and npm ci of
    it costs ten seconds of CPU a time: a worker installs it for real once and a fresh project proves it there."""
    tool = project / "tools" / "asyncapi"
    lock = hashlib.sha256((tool / "package-lock.json").read_bytes()).hexdigest()[:16]
    kept = installed / lock
    if not kept.exists():
        done = subprocess.run(
            ASYNCAPI_INSTALL, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert done.returncode == 0, f"`{' '.join(ASYNCAPI_INSTALL)}` exited {done.returncode}:\n{done.stdout}"
        shutil.copytree(tool / "node_modules", kept / "node_modules", symlinks=True, copy_function=os.link)
        return
    shutil.rmtree(tool / "node_modules", ignore_errors=True)
    shutil.copytree(kept / "node_modules", tool / "node_modules", symlinks=True, copy_function=os.link)


@pytest.fixture(scope="session")
def checked(tmp_path_factory: pytest.TempPathFactory) -> Checked:
    """Every variant rendered (kept in a temporary folder) and checked once for the session: what the manifest tests
    read (tests/deploy/manifests and each plug-in's test_manifests.py, one work group)."""
    out = tmp_path_factory.mktemp("k8s-variants")
    proc, report = run_check("--keep", str(out), report=out / "report.json")
    return out, proc, report


@pytest.fixture(scope="session")
def helm(checked: Checked) -> str:
    """The helm binary check.py installed (the `checked` fixture ran it once)."""
    from tools.k8s.check import HELM_VERSION, go_install

    return str(go_install("helm.sh/helm/v4/cmd/helm", HELM_VERSION, "helm"))


@pytest.fixture(scope="session")
def kafka_bootstrap(stack_settings: dict[str, str]) -> str:
    return stack_settings["KAFKA_BOOTSTRAP_SERVERS"]
