"""The audit hash chain: a record changed, removed or inserted, or written without the key, breaks it there."""

import json

import pytest

from agent_ops.patterns.audit.chain import GENESIS, canonical, first_break, seal
from agent_ops.patterns.audit.sealer import NotAnEntryError, entry_of

KEY = b"chain-key"


def sealed_log(count: int, key: bytes = KEY) -> list[tuple[int, bytes]]:
    """`count` sealed records at even offsets (odd ones are transaction markers, as on a real log)."""
    records = []
    prev = GENESIS
    for n in range(count):
        record = seal(key, prev, {"action": "published", "event_id": f"e-{n}"})
        records.append((2 * n, canonical(record)))
        prev = record["hash"]
    return records


def test_an_untouched_log_holds() -> None:
    assert first_break(sealed_log(5), KEY, from_genesis=True) is None


def test_a_changed_record_breaks_the_chain_at_its_offset() -> None:
    records = sealed_log(5)
    offset, value = records[2]
    changed = json.loads(value)
    changed["entry"]["event_id"] = "e-forged"
    records[2] = (offset, canonical(changed))
    found = first_break(records, KEY, from_genesis=True)
    assert found is not None
    assert found.offset == offset
    assert "does not match its content" in found.reason


def test_a_removed_record_breaks_the_chain_at_the_next_one() -> None:
    records = sealed_log(5)
    del records[2]
    found = first_break(records, KEY, from_genesis=True)
    assert found is not None
    assert found.offset == 6
    assert "removed or inserted" in found.reason


def test_an_inserted_record_breaks_the_chain_at_its_offset_even_when_it_links() -> None:
    records = sealed_log(4)
    before = json.loads(records[1][1])["hash"]
    forged = seal(b"a guessed key", before, {"action": "published", "event_id": "e-forged"})
    records.insert(2, (3, canonical(forged)))
    found = first_break(records, KEY, from_genesis=True)
    assert found is not None
    assert found.offset == 3


def test_a_record_that_is_not_sealed_breaks_the_chain() -> None:
    records = [*sealed_log(2), (9, b"not json")]
    found = first_break(records, KEY, from_genesis=True)
    assert found is not None
    assert found.offset == 9


def test_a_log_whose_head_expired_is_checked_from_its_first_record() -> None:
    records = sealed_log(5)[2:]
    assert first_break(records, KEY, from_genesis=False) is None
    assert first_break(records, KEY, from_genesis=True) is not None


def test_the_wrong_key_verifies_nothing() -> None:
    found = first_break(sealed_log(3), b"another key", from_genesis=True)
    assert found is not None
    assert found.offset == 0


@pytest.mark.parametrize("value", [None, b"", b"\xff\xfe", b"not json", b"[1, 2]", b'"a string"', b"null"])
def test_an_intake_record_that_is_not_an_entry_is_refused_for_the_dead_letter_topic(value: bytes | None) -> None:
    with pytest.raises(NotAnEntryError, match="not an audit entry"):
        entry_of(value)


def test_an_entry_is_the_json_object_the_record_holds() -> None:
    assert entry_of(canonical({"action": "published", "key": "k"})) == {"action": "published", "key": "k"}
