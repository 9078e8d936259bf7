"""One real local stack for the whole test session, started from the very launcher every generated project carries.

Under pytest-xdist (`make test` runs `-n 2`) every worker has a session of its own, so a stack of
its own: the variants' suites write fixed topic names (agent.tasks) and some assert what a topic gained during a
test, which a variant running at the same time on a shared broker would break.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from xdist.scheduler import LoadScopeScheduling

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


# The variants whose services authenticate share one worker, so that one secured stack serves them all.
SECURED_GROUP = "secured-variants"
# Modules whose tests share a fixture of their own wider than a test (the helm check, a stack with PostgreSQL and
# Connect, a three-node cluster, Prometheus's renders): kept on one worker so that it is set up once. The tests of
# any other module go one by one to whichever worker is free.
SHARED_FIXTURE_MODULES = {"test_k8s.py", "test_monitoring.py", "test_stack_connect.py", "test_doctor_cluster.py"}


def work_group(nodeid: str) -> str:
    """The share of work a test belongs to: its variant's in the variant matrix (one render, one install, one
    worker per variant), its module's if the module shares a fixture, else the test alone."""
    path, _, name = nodeid.partition("::")
    module = Path(path).name
    variant = re.search(r"\[([^\]]+)\]$", name) if module == "test_variants.py" else None
    if variant is not None:
        secured = variant_answers(variant[1]).get("security", "none") != "none"
        return SECURED_GROUP if secured else f"variant-{variant[1]}"
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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest groups first, so that the few-minute variant suites start at once and the other tests fill the
    gaps: the secured variants (and their stack), then the other variants, then the covering array's renders one by
    one, then the rest as collected."""
    groups = [work_group(item.nodeid) for item in items]
    first_seen = {group: index for index, group in reversed(list(enumerate(groups)))}

    def rank(group: str) -> tuple[int, int]:
        if group == SECURED_GROUP:
            return 0, first_seen[group]
        if group.startswith("variant-"):
            return 1, first_seen[group]
        combination = Path(group.partition("::")[0]).name == COMBINATIONS_MODULE and "[" in group
        return (2 if combination else 3), first_seen[group]

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


@pytest.fixture(scope="session")
def kafka_bootstrap(stack_settings: dict[str, str]) -> str:
    return stack_settings["KAFKA_BOOTSTRAP_SERVERS"]
