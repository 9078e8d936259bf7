"""The stack: the pieces started from one state directory, started, awaited, stopped, under its lock."""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.error
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from .downloads import DOWNLOADED, megabytes
from .errors import StackError, say
from .jvm import ClassArchive
from .kafka import CLUSTER, Kafka
from .net import free_port
from .pgwire import PostgresError
from .piece import Piece
from .pieces import PIECES
from .processes import stop_process, tail
from .state import Entry, PieceStatus, StackState, entry_options, entry_ports

READY_TIMEOUT_S = 120.0


class Stack(StackState):
    """The pieces started from one state directory. Every change holds the directory's lock."""

    def piece(self, name: str, options: dict[str, str] | None = None) -> Piece:
        if name not in PIECES:
            raise StackError(f"Unknown piece(s) {name}; choose from {', '.join(PIECES)}.")
        return PIECES[name](self.dir, options)

    def up(self, names: Sequence[str], options: dict[str, str] | None = None, brokers: int = 1) -> dict[str, str]:
        with self.locked():
            settings: dict[str, str] = {}
            for name in names:
                if name == "kafka" and brokers == 3:
                    settings |= self.start_cluster()
                else:
                    settings |= self.start(self.piece(name, options))
            return settings

    def start(self, piece: Piece, ports: dict[str, int] | None = None) -> dict[str, str]:
        """Start `piece` unless it runs and answers. Fresh (new ports, empty data) unless `ports` are given."""
        entry = self.running(piece.name)
        if entry is not None:
            running_ports = entry_ports(entry)
            if piece.ready(running_ports):
                say(f"{piece.name} already running (pid {entry['pid']}, log {entry['log']})")
                return piece.settings(running_ports)
            self.kill(piece.name, entry)
        before, fetching = DOWNLOADED[0], time.monotonic()
        piece.install()
        if DOWNLOADED[0] > before:
            say(
                f"{piece.name}: first run, {megabytes(DOWNLOADED[0] - before)} downloaded and unpacked in "
                f"{time.monotonic() - fetching:.0f} s (cached for the next runs)"
            )
        started = time.monotonic()
        if ports is None:
            shutil.rmtree(piece.home, ignore_errors=True)
            ports = {name: free_port() for name in piece.port_names()}
        proc, entry = self.launch(piece, ports)
        return self.await_ready(piece, proc, entry, ports, started)

    def launch(self, piece: Piece, ports: dict[str, int]) -> tuple[subprocess.Popen[bytes], Entry]:
        piece.home.mkdir(parents=True, exist_ok=True)
        piece.prepare(ports)
        with piece.log.open("ab") as log:
            proc = subprocess.Popen(
                piece.command(ports),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=piece.home,
                start_new_session=True,
            )
        entry: Entry = {"pid": proc.pid, "ports": ports, "log": str(piece.log), "options": piece.options}
        if piece.class_archive is not None:
            entry["class_archive"] = piece.class_archive.to_entry()
        self.update(piece.name, entry)
        return proc, entry

    def await_ready(
        self,
        piece: Piece,
        proc: subprocess.Popen[bytes],
        entry: Entry,
        ports: dict[str, int],
        started: float | None = None,
    ) -> dict[str, str]:
        """Wait until `piece` answers; its start time is counted from `started` (before its preparation, such as
        PostgreSQL's initdb), else from now."""
        started = time.monotonic() if started is None else started
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not piece.ready(ports):
            if proc.poll() is not None:
                raise StackError(
                    f"{piece.name} exited with {proc.returncode} while starting; see {piece.log}:\n{tail(piece.log)}"
                )
            if time.monotonic() > deadline:
                self.kill(piece.name, entry)
                self.update(piece.name, None)
                raise StackError(
                    f"{piece.name} was not ready after {READY_TIMEOUT_S:.0f} s; see {piece.log}:\n{tail(piece.log)}"
                )
            time.sleep(0.2)
        piece.configure(ports)
        say(f"{piece.name} ready in {time.monotonic() - started:.1f} s (pid {proc.pid}, log {piece.log})")
        return piece.settings(ports)

    def start_cluster(self) -> dict[str, str]:
        """The three nodes of `up --brokers 3`, fresh unless all run: each needs the others' controller ports before
        it starts, and none is ready before two of them form the quorum, so all are launched before any is awaited."""
        nodes = [self.piece(name) for name in CLUSTER]
        entries = [self.running(node.name) for node in nodes]
        if all(entries) and all(node.ready(entry_ports(e)) for node, e in zip(nodes, entries, strict=True) if e):
            settings: dict[str, str] = {}
            for node, entry in zip(nodes, entries, strict=True):
                if entry:
                    node.options = entry_options(entry)
                    settings |= node.settings(entry_ports(entry))
            say("kafka (3 nodes) already running")
            return settings
        for node, entry in zip(nodes, entries, strict=True):
            if entry is not None:
                self.kill(node.name, entry)
            shutil.rmtree(node.home, ignore_errors=True)
        ports = [{name: free_port() for name in ("broker", "controller", "metrics")} for _ in nodes]
        first = nodes[0]
        assert isinstance(first, Kafka)
        first.install()
        options = {
            "brokers": "3",
            "cluster_id": first.cluster_id(),
            "voters": ",".join(f"{n + 1}@127.0.0.1:{p['controller']}" for n, p in enumerate(ports)),
            "bootstrap": ",".join(f"127.0.0.1:{p['broker']}" for p in ports),
            "metrics": ",".join(f"http://127.0.0.1:{p['metrics']}/metrics" for p in ports),
        }
        launched = []
        for node, node_ports in zip(nodes, ports, strict=True):
            node.options = options
            node.install()
            launched.append((node, *self.launch(node, node_ports), node_ports))
        settings = {}
        for node, proc, entry, node_ports in launched:
            settings |= self.await_ready(node, proc, entry, node_ports)
        return settings

    def down(self, keep_data: bool = False) -> None:
        with self.locked():
            state = self.load()
            for name in reversed(list(state)):
                self.release(name)
            for name in reversed(list(state)):
                self.kill(name, state[name])
                say(f"{name} stopped")
                if not keep_data:
                    shutil.rmtree(self.dir / name, ignore_errors=True)
            self.state_file.unlink(missing_ok=True)

    def release(self, name: str) -> None:
        """Let a running piece undo what clients made through it (Connect: connectors, then their slots); a failure
        is reported and `down` goes on."""
        entry = self.running(name)
        if entry is None:
            return
        try:
            self.piece(name, entry_options(entry)).release(entry_ports(entry))
        except (OSError, urllib.error.URLError, ValueError, KeyError, PostgresError, StackError) as error:
            say(f"{name}: could not clean up before stopping: {error}")

    def kill(self, name: str, entry: Entry) -> None:
        stopped = stop_process(int(str(entry["pid"])), str(self.dir), name)
        archive = ClassArchive.from_entry(entry)
        if stopped and archive is not None:
            archive.adopt()

    def stop_piece(self, name: str) -> None:
        """Stop one piece (SIGTERM, then SIGKILL after STOP_TIMEOUT_S), keeping its data, ports and options."""
        with self.locked():
            entry = self.load().get(name)
            if entry is None:
                raise StackError(f"{name} was not started from {self.dir}; start it with `up`.")
            self.kill(name, entry)
            self.update(name, entry | {"pid": 0})
            say(f"{name} stopped (data and ports kept)")

    def start_piece(self, name: str) -> dict[str, str]:
        """Start a stopped piece again on its ports, with its data and options; a no-op if it runs."""
        with self.locked():
            entry = self.load().get(name)
            if entry is None:
                raise StackError(f"{name} was not started from {self.dir}; start it with `up`.")
            return self.start(self.piece(name, entry_options(entry)), entry_ports(entry))

    def settings(self) -> dict[str, str]:
        settings: dict[str, str] = {}
        for name in self.load():
            entry = self.running(name)
            if entry is None:
                raise StackError(f"{name} is not running; start the stack with `up`.")
            settings |= self.piece(name, entry_options(entry)).settings(entry_ports(entry))
        if not settings:
            raise StackError(f"No stack is running from {self.dir}; start it with `up`.")
        return settings

    def status(self) -> list[PieceStatus]:
        return [
            PieceStatus(
                name=name,
                pid=int(str(entry["pid"])),
                ports=entry_ports(entry),
                log=Path(str(entry["log"])),
                running=self.running(name) is not None,
                options=entry_options(entry),
            )
            for name, entry in self.load().items()
        ]

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Serialise changes across processes (parallel test runs share one stack); not re-entrant."""
        import fcntl

        self.dir.mkdir(parents=True, exist_ok=True)
        with (self.dir / ".lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
