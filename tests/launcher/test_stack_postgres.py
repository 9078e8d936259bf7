"""The launcher's PostgreSQL piece: started beside Kafka, ready for logical decoding, gone after `down`."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.conftest import stack_command
from tools.stack import kafka_stack


def processes_of(state_dir: Path) -> list[int]:
    """Pids whose command line names `state_dir` (the launcher's marker)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if str(state_dir).encode() in (proc / "cmdline").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def test_postgres_starts_with_the_stack_and_down_leaves_nothing_behind() -> None:
    # Not under pytest's basetemp: as root, PostgreSQL runs as an unprivileged user that must pass through the
    # folders above its data, and every pytest session that starts resets /tmp/pytest-of-root to 0700.
    state_dir = Path(tempfile.mkdtemp(prefix="kafka-stack-postgres-"))
    up = subprocess.run([*stack_command(state_dir), "up", "--with", "postgres"], capture_output=True, text=True)
    try:
        assert up.returncode == 0, up.stderr
        # Its warm start, initdb included, as `up` reports it.
        assert re.search(r"postgres ready in \d+\.\d s", up.stderr), up.stderr
        settings = dict(line.split("=", 1) for line in up.stdout.split())
        url = settings["DATABASE_URL"]
        assert url.startswith("postgresql://postgres@127.0.0.1:")
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        assert kafka_stack.postgres_accepts(port)
        assert "wal_level=logical" in (Path("/proc") / str(postgres_pid(state_dir)) / "cmdline").read_bytes().decode(
            errors="replace"
        ).replace("\0", " ")
        server = [pid for pid in processes_of(state_dir) if Path(f"/proc/{pid}").stat().st_uid != 0]
        if os.geteuid() == 0:
            assert server, "initdb and postgres refuse root: the server runs as an unprivileged user"
    finally:
        down = subprocess.run([*stack_command(state_dir), "down"], capture_output=True, text=True)
    assert down.returncode == 0, down.stderr
    assert processes_of(state_dir) == []
    assert not (state_dir / "postgres").exists(), "down deletes the database's data"
    assert not kafka_stack.postgres_accepts(port)
    shutil.rmtree(state_dir, ignore_errors=True)


def postgres_pid(state_dir: Path) -> int:
    return int(json.loads((state_dir / "state.json").read_text())["postgres"]["pid"])
