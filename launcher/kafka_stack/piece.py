"""What every piece of the stack provides: a process with ports, a command line, a readiness probe and settings."""

from __future__ import annotations

from pathlib import Path

from .jvm import ClassArchive


class Piece:
    """One process of the stack. A new piece subclasses this, says how to install, start, probe and describe
    itself, and is listed in PIECES (or registered with @piece); `up --with NAME` then starts it after Kafka.

    `options` are the stack's options (`up --compatibility`, ...): each piece reads the ones it knows. They are
    kept in the state file, so that a restarted piece comes back configured as it was.
    """

    name = ""
    class_archive: ClassArchive | None = None  # a JVM piece's, set by its command()

    def __init__(self, state_dir: Path, options: dict[str, str] | None = None) -> None:
        self.state_dir = state_dir
        self.options = dict(options or {})
        self.home = state_dir / self.name
        self.log = self.home / f"{self.name}.log"

    def install(self) -> None:
        """Find or fetch what the command needs (Java, jars); cached, so cheap after the first run."""
        raise NotImplementedError

    def port_names(self) -> list[str]:
        """Names of the ports to allocate on 127.0.0.1; a restart keeps the same ones."""
        raise NotImplementedError

    def prepare(self, ports: dict[str, int]) -> None:
        """Write configuration and initialise data; runs before every start, so must keep existing data."""

    def command(self, ports: dict[str, int]) -> list[str]:
        """The command line; it must carry the state directory (the marker `down` checks before signalling)."""
        raise NotImplementedError

    def ready(self, ports: dict[str, int]) -> bool:
        raise NotImplementedError

    def configure(self, ports: dict[str, int]) -> None:
        """Apply runtime configuration once the process is ready."""

    def settings(self, ports: dict[str, int]) -> dict[str, str]:
        """The KEY=VALUE settings a client needs, printed by `up` and `env`."""
        raise NotImplementedError

    def release(self, ports: dict[str, int]) -> None:
        """Undo what clients made through this piece in other pieces (`down` calls it while every piece still runs)."""
