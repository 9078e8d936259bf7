"""A minimal spec for the answer tests, shared by the core's (tests/spec) and each pattern's (tests/patterns)."""

from __future__ import annotations

import copy
from typing import Any

EVENT = {"name": "ThingHappened", "fields": [{"name": "thing_id", "type": "string"}]}
SPEC: dict[str, Any] = {
    "consumer_group": "things",
    "topics": [{"name": "things", "key": "thing_id", "events": [EVENT]}],
}


def spec_with(path: str, value: Any) -> dict[str, Any]:
    """SPEC with one value replaced, addressed like `topics.0.events.0.name`."""
    spec = copy.deepcopy(SPEC)
    *parents, last = [int(part) if part.isdigit() else part for part in path.split(".")]
    node: Any = spec
    for part in parents:
        node = node[part]
    node[last] = value
    return spec
