"""One real local stack for the whole test session, started from the very launcher every generated project carries.

Under pytest-xdist (`make test` runs `-n 2 --dist loadgroup`) every worker has a session of its own, so a stack of
its own: the variants' suites write fixed topic names (agent.tasks) and some assert what a topic gained during a
test, which a variant running at the same time on a shared broker would break.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

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


def work_group(item: pytest.Item) -> str:
    """The xdist group of a test: its variant's (one render, one install, one worker per variant), else its module's
    (a module's session and module fixtures, such as its own stack or the helm check, then run once)."""
    params: dict[str, object] = (
        item.callspec.params if isinstance(item, pytest.Function) and hasattr(item, "callspec") else {}
    )
    variant = params.get("variant")
    if item.get_closest_marker("variant") and isinstance(variant, str):
        return SECURED_GROUP if variant_answers(variant).get("security", "none") != "none" else f"variant-{variant}"
    return f"module-{item.path.stem}"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Put each test in its work group, and the longest groups first: xdist hands groups out in collection order
    (with --no-loadscope-reorder), so the few-minute variant suites start first and the short modules fill the gaps."""
    groups = {item: work_group(item) for item in items}
    for item, group in groups.items():
        if not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(group))
    first_seen = {group: index for index, group in reversed(list(enumerate(groups.values())))}

    def weight(item: pytest.Item) -> tuple[int, int]:
        group = groups[item]
        rank = 0 if group == SECURED_GROUP else 1 if group.startswith("variant-") else 2
        return rank, first_seen[group]

    items.sort(key=weight)


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
