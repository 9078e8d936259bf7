"""The API: what tests and tools import (`up`, `down`, `settings`, `status`, `stop_piece`, `start_piece`, ...)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .errors import StackError
from .kafka import CLUSTER
from .registry import compatibility_level
from .stack import Stack
from .state import PieceStatus
from .tls import issue_certificate


def up(
    state_dir: Path | str,
    pieces: Sequence[str] = ("kafka",),
    *,
    compatibility: str | None = None,
    brokers: int = 1,
    secure: bool = False,
) -> dict[str, str]:
    """Start Kafka and `pieces` (idempotent); return their settings (KAFKA_BOOTSTRAP_SERVERS, ...).

    `brokers=3`: three combined nodes (`kafka`, `kafka-2`, `kafka-3`; static voters, replication 3,
    min.insync.replicas 2), so that a node can be stopped (`stop_piece`) to under-replicate partitions.
    `secure`: SCRAM over TLS and client-certificate listeners, ACLs enforced, an admin super user
    (docs/security.md); one node."""
    if brokers not in (1, 3):
        raise StackError(f"--brokers is 1 or 3, not {brokers}.")
    if secure and brokers != 1:
        raise StackError("--secure starts one node; leave out --brokers, or --secure.")
    options = {"compatibility": compatibility_level(compatibility)} if "registry" in pieces else {}
    if secure:
        options["secure"] = "true"
    extra = [name for name in pieces if name not in CLUSTER]
    return Stack(state_dir).up(["kafka", *extra], options, brokers=brokers)


def certificate(state_dir: Path | str, name: str) -> dict[str, str]:
    """A client certificate for user `name` from a secure stack's CA: the settings of a client that uses it."""
    tls = Stack(state_dir).dir / "kafka" / "tls"
    if not (tls / "ca.key").exists():
        raise StackError(f"No secure stack runs from {state_dir}; start one with `up --secure`.")
    certfile, keyfile = issue_certificate(tls, name)
    return {
        "KAFKA_SSL_CERTFILE": str(certfile),
        "KAFKA_SSL_KEYFILE": str(keyfile),
        "KAFKA_SSL_CAFILE": str(tls / "ca.pem"),
    }


def down(state_dir: Path | str, *, keep_data: bool = False) -> None:
    """Stop every piece started from `state_dir` (only those) and delete their data unless `keep_data`."""
    Stack(state_dir).down(keep_data)


def settings(state_dir: Path | str) -> dict[str, str]:
    """The settings of the stack running from `state_dir`; StackError if it, or a piece of it, is not running."""
    return Stack(state_dir).settings()


def status(state_dir: Path | str) -> list[PieceStatus]:
    """Each piece started from `state_dir`: pid, ports, log file, whether it runs, its options."""
    return Stack(state_dir).status()


def stop_piece(state_dir: Path | str, name: str) -> None:
    """Stop one piece, keeping its data and ports for `start_piece` (a broker outage, say)."""
    Stack(state_dir).stop_piece(name)


def start_piece(state_dir: Path | str, name: str) -> dict[str, str]:
    """Start a piece that `stop_piece` stopped, on the same ports with the same data; wait until it is ready."""
    return Stack(state_dir).start_piece(name)


def restart(state_dir: Path | str, name: str) -> dict[str, str]:
    """`stop_piece` then `start_piece`: the same ports and data, a new process."""
    stop_piece(state_dir, name)
    return start_piece(state_dir, name)
