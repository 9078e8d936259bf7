"""generated-examples/ is what the template renders today, not what it rendered once."""

from __future__ import annotations

from tools.examples import stale_examples


def test_committed_examples_match_a_fresh_render() -> None:
    stale = stale_examples()
    assert stale == {}, f"stale examples (run `make examples`): {stale}"
