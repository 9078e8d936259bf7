"""The pieces' processes: whether one is still ours, stopping it, running a helper command, a log's tail."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

from .errors import StackError, say

STOP_TIMEOUT_S = 30.0


def alive(pid: int, marker: str) -> bool:
    """Whether `pid` runs and is ours: its command line carries the state directory as a marker."""
    if pid <= 0:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return sys.platform != "linux"  # no /proc to check against elsewhere: trust the pid file
    return marker in cmdline


def stop_process(pid: int, marker: str, name: str) -> bool:
    """SIGTERM, then SIGKILL after STOP_TIMEOUT_S; whether the process ran and finished its own shutdown."""
    if not alive(pid, marker):
        return False
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        if not alive(pid, marker):
            return True
        time.sleep(0.1)
    say(f"{name} did not stop within {STOP_TIMEOUT_S:.0f} s; killing it")
    with suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    return False


def run_quietly(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise StackError(f"{what} failed ({' '.join(command)}):\n{result.stdout}{result.stderr}")


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "".join(path.read_text(errors="replace").splitlines(keepends=True)[-lines:])
    except OSError:
        return "(no log)"
