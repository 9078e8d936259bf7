"""The local stack launcher: what `up`, `env`, `status` and `down` promise, on a broker of its own."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import STACK, stack_command


def launcher() -> ModuleType:
    spec = importlib.util.spec_from_file_location("kafka_stack", STACK)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cli(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*stack_command(state_dir), *args], capture_output=True, text=True)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_up_is_idempotent_and_down_stops_what_it_started(tmp_path: Path) -> None:
    state_dir = tmp_path / "stack"
    first = cli(state_dir, "up")
    assert first.returncode == 0, first.stderr
    assert "kafka ready in" in first.stderr
    bootstrap = first.stdout.strip()
    assert bootstrap.startswith("KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:")
    pid = json.loads((state_dir / "state.json").read_text())["kafka"]["pid"]
    try:
        host, port = bootstrap.split("=", 1)[1].split(":")
        assert launcher().metadata_broker_count(host, int(port)) == 1

        again = cli(state_dir, "up")
        assert again.returncode == 0, again.stderr
        assert again.stdout.strip() == bootstrap
        assert "already running" in again.stderr
        assert json.loads((state_dir / "state.json").read_text())["kafka"]["pid"] == pid

        assert cli(state_dir, "env").stdout.strip() == bootstrap
        assert cli(state_dir, "env", "--export").stdout.strip() == f"export {bootstrap}"
        status = cli(state_dir, "status")
        assert status.returncode == 0
        assert "running" in status.stdout
    finally:
        down = cli(state_dir, "down")
    assert down.returncode == 0, down.stderr
    assert not pid_alive(pid)
    assert cli(state_dir, "status").returncode == 3
    assert not (state_dir / "kafka").exists(), "down deletes the broker's data"
    assert cli(state_dir, "env").returncode == 1


def test_the_registry_serves_the_confluent_api_with_a_compatibility_rule(tmp_path: Path) -> None:
    state_dir = tmp_path / "stack"
    up = cli(state_dir, "up", "--with", "registry")
    try:
        assert up.returncode == 0, up.stderr
        settings = dict(line.split("=", 1) for line in up.stdout.split())
        registry = settings["SCHEMA_REGISTRY_URL"]
        assert registry.startswith("http://127.0.0.1:")
        assert registry.endswith("/apis/ccompat/v7")
        with urllib.request.urlopen(f"{registry}/config", timeout=10) as response:
            assert json.loads(response.read())["compatibilityLevel"] == "BACKWARD"
    finally:
        assert cli(state_dir, "down").returncode == 0


def test_down_leaves_a_process_it_did_not_start_alone(tmp_path: Path) -> None:
    state_dir = tmp_path / "stack"
    state_dir.mkdir()
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        entry = {"pid": stranger.pid, "ports": {"broker": 1, "controller": 2}, "log": "x"}
        (state_dir / "state.json").write_text(json.dumps({"kafka": entry}))
        assert cli(state_dir, "down").returncode == 0
        assert stranger.poll() is None, "down killed a process that the stack never started"
    finally:
        stranger.kill()
        stranger.wait()


def test_a_missing_java_is_explained() -> None:
    module = launcher()
    with pytest.raises(module.StackError, match="Java 99 or newer is needed") as missing:
        module.find_java(99)
    assert "apt-get install" in str(missing.value)
    assert "JAVA_HOME" in str(missing.value)


def test_a_missing_maven_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    module = launcher()
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(module.StackError, match="apt-get install maven"):
        module.find_maven()


def test_an_unknown_piece_is_refused(tmp_path: Path) -> None:
    result = cli(tmp_path / "stack", "up", "--with", "zookeeper")
    assert result.returncode == 1
    assert "Unknown piece(s) zookeeper; choose from" in result.stderr
