"""The PostgreSQL wire protocol, just enough to run SQL on the stack's server: a few lines rather than a driver,
as the launcher imports nothing outside the standard library."""

from __future__ import annotations

import socket
import struct

from .net import read_exactly


def postgres_accepts(port: int) -> bool:
    """Whether PostgreSQL on `port` lets the `postgres` user in (trust): a startup message answered by an
    authentication request, not by an error such as 'the database system is starting up'."""
    body = struct.pack("!I", 196608) + b"user\0postgres\0database\0postgres\0\0"
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(struct.pack("!I", len(body) + 4) + body)
            accepted = read_exactly(sock, 1) == b"R"
            sock.sendall(b"X\0\0\0\4")
            return accepted
    except OSError:
        return False


class PostgresError(Exception):
    """An error the server answered with (ErrorResponse), with its message."""


def postgres_query(port: int, database: str, sql: str) -> list[tuple[str | None, ...]]:
    """Run `sql` (simple query protocol) as the `postgres` user (trust) on the stack's server; the rows as text.

    A few lines of the wire protocol rather than a driver: the launcher imports nothing outside the standard library.
    """
    startup = struct.pack("!I", 196608) + b"user\0postgres\0database\0" + database.encode() + b"\0\0"
    rows: list[tuple[str | None, ...]] = []
    error = ""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(struct.pack("!I", len(startup) + 4) + startup)
        for phase in ("startup", "query"):
            if phase == "query":
                query = sql.encode() + b"\0"
                sock.sendall(b"Q" + struct.pack("!I", len(query) + 4) + query)
            while True:
                kind = read_exactly(sock, 1)
                body = read_exactly(sock, struct.unpack("!I", read_exactly(sock, 4))[0] - 4)
                if kind == b"E":
                    fields = {f[:1]: f[1:].decode(errors="replace") for f in body.split(b"\0") if f}
                    error = error or fields.get(b"M", "unknown error")
                    if phase == "startup":
                        raise PostgresError(error)
                elif kind == b"R" and struct.unpack("!I", body[:4])[0] != 0:
                    raise PostgresError("the server asks for a password; the stack's PostgreSQL trusts loopback")
                elif kind == b"D":
                    rows.append(data_row(body))
                elif kind == b"Z":
                    break
        sock.sendall(b"X\0\0\0\4")
    if error:
        raise PostgresError(error)
    return rows


def data_row(body: bytes) -> tuple[str | None, ...]:
    (count,) = struct.unpack("!H", body[:2])
    values: list[str | None] = []
    offset = 2
    for _ in range(count):
        (size,) = struct.unpack("!i", body[offset : offset + 4])
        offset += 4
        if size < 0:
            values.append(None)
        else:
            values.append(body[offset : offset + size].decode())
            offset += size
    return tuple(values)


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def sql_identifier(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'
