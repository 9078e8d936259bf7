"""The Kafka wire protocol, just enough to ask a broker for metadata."""

from __future__ import annotations

import socket
import struct

from .net import read_exactly


def metadata_broker_count(host: str, port: int, timeout: float = 2.0) -> int:
    """Send a Metadata v4 request and return how many brokers the cluster reports."""
    client_id = b"kafka-stack"
    body = struct.pack(">hhih", 3, 4, 1, len(client_id)) + client_id + struct.pack(">ib", -1, 0)
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(struct.pack(">i", len(body)) + body)
        size = struct.unpack(">i", read_exactly(sock, 4))[0]
        payload = read_exactly(sock, size)
    correlation_id, _throttle_ms, broker_count = struct.unpack(">iii", payload[:12])
    if correlation_id != 1:
        raise OSError("unexpected correlation id in metadata response")
    return int(broker_count)
