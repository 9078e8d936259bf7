"""The hash chain of the audit log: each sealed record's hash covers its entry and the hash before it.

The hash is an HMAC under the chain key, so a writer without the key cannot make a record that links; a record
changed, removed or inserted breaks the chain at (or right after) its place."""

import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64
"""What the first record of a partition links to."""


def canonical(value: Any) -> bytes:
    """One byte string per JSON value: keys sorted, no spaces."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def link(key: bytes, prev: str, entry: dict[str, Any]) -> str:
    return hmac.new(key, prev.encode() + b"\n" + canonical(entry), hashlib.sha256).hexdigest()


def seal(key: bytes, prev: str, entry: dict[str, Any]) -> dict[str, Any]:
    """The record the audit log stores for `entry`, after the record whose hash is `prev`."""
    return {"entry": entry, "prev": prev, "hash": link(key, prev, entry)}


@dataclass(frozen=True)
class Break:
    offset: int
    reason: str


def first_break(records: Iterable[tuple[int, bytes | None]], key: bytes, from_genesis: bool) -> Break | None:
    """The first of a partition's `(offset, value)` records whose chain breaks, or None when it holds.

    `from_genesis`: the partition still starts at its first record, which must link to GENESIS; after retention
    deleted the head, the first record left is taken as the anchor."""
    prev = GENESIS if from_genesis else None
    for offset, value in records:
        try:
            if value is None:
                raise TypeError  # a tombstone
            sealed = json.loads(value)
            entry, claimed_prev, claimed = sealed["entry"], sealed["prev"], sealed["hash"]
            if not isinstance(entry, dict) or not isinstance(claimed_prev, str) or not isinstance(claimed, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return Break(offset, "not a sealed audit record: written by someone other than the sealer")
        if prev is not None and claimed_prev != prev:
            return Break(offset, "does not link to the record before it: a record was removed or inserted here")
        if not hmac.compare_digest(link(key, claimed_prev, entry), claimed):
            return Break(offset, "its hash does not match its content: changed, or written without the chain key")
        prev = claimed
    return None
