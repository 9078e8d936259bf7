"""The cache every fetch shares (Java, Maven, jars, class archives), and its lock across processes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def cache_root() -> Path:
    if explicit := os.environ.get("KAFKA_STACK_CACHE"):
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "kafka-events"


@contextmanager
def cache_lock(target: Path) -> Iterator[None]:
    """One fetch of `target` at a time across processes: the others wait, then find it complete."""
    import fcntl

    target.parent.mkdir(parents=True, exist_ok=True)
    with target.with_name(f"{target.name}.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
