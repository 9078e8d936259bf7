"""The render-and-test matrix: every variant in tests/variants/ is rendered from the working tree, then held to the
bar of hand-written code — formatted, lint clean, strictly typed — and its own test suite runs against a real broker.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import SECURE_STACK_VARIABLES, clean_slate, install_asyncapi_parser
from tools.render import render, variant_answers, variant_names

pytestmark = pytest.mark.variant

VARIANTS = variant_names()


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean_env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", *SECURE_STACK_VARIABLES}}
    return subprocess.run(
        command, cwd=cwd, env=clean_env | (env or {}), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    tail = "\n".join(result.stdout.splitlines()[-150:])
    assert result.returncode == 0, f"`{' '.join(result.args)}` exited {result.returncode}:\n{tail}"


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory, installed_parsers: Path) -> Callable[[str], Path]:
    """Render a variant and install it as `make install` does (once per session); return its folder."""
    installed: dict[str, Path] = {}

    def get(variant: str) -> Path:
        if variant not in installed:
            dest = render(variant_answers(variant), tmp_path_factory.mktemp("variants") / variant)
            assert_ok(run(["uv", "sync", "--quiet"], dest))
            install_asyncapi_parser(dest, installed_parsers)
            installed[variant] = dest
        return installed[variant]

    return get


@pytest.mark.parametrize("variant", VARIANTS)
def test_rendered_code_is_formatted(project: Callable[[str], Path], variant: str) -> None:
    assert_ok(run(["uv", "run", "ruff", "format", "--check", "--diff", "."], project(variant)))


@pytest.mark.parametrize("variant", VARIANTS)
def test_rendered_code_is_lint_clean(project: Callable[[str], Path], variant: str) -> None:
    assert_ok(run(["uv", "run", "ruff", "check", "."], project(variant)))


@pytest.mark.parametrize("variant", VARIANTS)
def test_rendered_code_type_checks_strictly(project: Callable[[str], Path], variant: str, mypy_cache: str) -> None:
    assert_ok(run(["uv", "run", "mypy"], project(variant), env={"MYPY_CACHE_DIR": mypy_cache}))


@pytest.mark.parametrize("variant", VARIANTS)
def test_rendered_test_suite_passes_against_the_real_broker(
    project: Callable[[str], Path], variant: str, request: pytest.FixtureRequest
) -> None:
    # A service that authenticates runs on a broker that enforces its ACLs (started only if such a variant runs).
    secured = variant_answers(variant).get("security", "none") != "none"
    stack: dict[str, str] = request.getfixturevalue("secure_stack_settings" if secured else "stack_settings")
    if stack.get("KAFKA_BOOTSTRAP_SERVERS") != os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):  # never a caller's stack
        clean_slate(stack)
    result = run(["uv", "run", "pytest", "-q", "-p", "no:cacheprovider"], project(variant), env=stack)
    assert_ok(result)
    summary = result.stdout.strip().splitlines()[-1]
    assert re.search(r"\d+ passed", summary), summary
    assert "skipped" not in summary, summary


@pytest.mark.parametrize("variant", VARIANTS)
def test_topic_names_come_from_the_spec_alone(project: Callable[[str], Path], variant: str) -> None:
    """Only the catalog spells a topic name in code; everything else refers to it, so the spec stays the one source."""
    dest = project(variant)
    topics = [topic["name"] for topic in rendered_spec(dest)["topics"]]
    for path in (dest / "src").rglob("*.py"):
        text = path.read_text()
        for topic in topics:
            literal = f'"{topic}"'
            if path.name != "catalog.py":
                assert literal not in text, f"{path.relative_to(dest)} spells the topic {literal}; use the catalog"
    catalog = next((dest / "src").rglob("catalog.py")).read_text()
    assert all(f'"{topic}"' in catalog for topic in topics)


def rendered_spec(dest: Path) -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load((dest / ".copier-answers.yml").read_text())["spec"]
    return spec


@pytest.mark.parametrize("variant", ["notifications"])
def test_a_different_spec_leaves_no_trace_of_the_default_domain(project: Callable[[str], Path], variant: str) -> None:
    dest = project(variant)
    leftovers = [
        f"{path.relative_to(dest)}:{number}"
        for path in [*dest.rglob("*.py"), *dest.rglob("*.md")]
        if ".venv" not in path.parts
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"agent\.tasks|/tasks|Task(Created|Started|Completed|Failed)|task_id", line)
    ]
    assert leftovers == []


@pytest.mark.parametrize("variant", ["notifications"])
def test_a_topic_the_service_does_not_consume_gets_no_handler_and_no_read_route(
    project: Callable[[str], Path], variant: str
) -> None:
    dest = project(variant)
    handlers = (dest / "src" / "notifier" / "handlers.py").read_text()
    routes = (dest / "src" / "notifier" / "api" / "events.py").read_text()
    assert "on_notification_requested" in handlers
    assert "NotificationDelivered" not in handlers
    assert re.search(r'@router\.post\(\s*"/deliveries"', routes)
    assert not re.search(r'@router\.get\(\s*"/deliveries/\{key\}"', routes)
