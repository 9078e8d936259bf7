"""The state file of a state directory: each piece's pid, ports, log, options and class archive."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .processes import alive


@dataclass(frozen=True)
class PieceStatus:
    """One piece as the state file and /proc see it; pid is 0 once `stop_piece` stopped it."""

    name: str
    pid: int
    ports: dict[str, int]
    log: Path
    running: bool
    options: dict[str, str]


Entry = dict[str, object]


def entry_ports(entry: Entry) -> dict[str, int]:
    ports = entry.get("ports")
    return {str(k): int(str(v)) for k, v in ports.items()} if isinstance(ports, dict) else {}


def entry_options(entry: Entry) -> dict[str, str]:
    options = entry.get("options")
    return {str(k): str(v) for k, v in options.items()} if isinstance(options, dict) else {}


class StackState:
    """The state file of one state directory, read and written; `Stack` starts and stops what it records."""

    def __init__(self, state_dir: Path | str) -> None:
        self.dir = Path(state_dir).resolve()
        self.state_file = self.dir / "state.json"

    def load(self) -> dict[str, Entry]:
        try:
            return dict(json.loads(self.state_file.read_text()))
        except (OSError, ValueError):
            return {}

    def save(self, state: dict[str, Entry]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        tmp.replace(self.state_file)

    def update(self, name: str, entry: Entry | None) -> None:
        state = self.load()
        if entry is None:
            state.pop(name, None)
        else:
            state[name] = entry
        self.save(state)

    def running(self, name: str) -> Entry | None:
        entry = self.load().get(name)
        if entry and alive(int(str(entry["pid"])), str(self.dir)):
            return entry
        return None
