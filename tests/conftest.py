"""One real local stack for the whole test session, started from the very launcher every generated project carries."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

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
