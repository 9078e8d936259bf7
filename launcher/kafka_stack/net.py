"""Loopback networking: free ports for the pieces' listeners, and reading a reply of known length."""

from __future__ import annotations

import random
import socket
from pathlib import Path

from .errors import StackError

HANDED_OUT: set[int] = set()
"""The ports free_port gave this process: none twice, even before the first one's listener binds it."""


def free_port() -> int:
    """A port nothing listens on at 127.0.0.1 now, for a process that binds it seconds later: below the kernel's range
    of ports for outgoing connections where that range leaves room. A port there (what bind(0) gives) may be taken
    by any client's connection on the machine before the listener binds it, and the listener fails to start."""
    low = ephemeral_range_start()
    for _ in range(100):
        port = random.randrange(10_000, low) if low > 11_000 else 0
        if port in HANDED_OUT:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            port = int(sock.getsockname()[1])
        if port not in HANDED_OUT:
            HANDED_OUT.add(port)
            return port
    raise StackError("no free port on 127.0.0.1")


def ephemeral_range_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default; macOS starts at 49152


def read_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise OSError("connection closed")
        chunks += chunk
    return bytes(chunks)
