"""generated-examples/ is what the template renders today, not what it rendered once."""

from __future__ import annotations

from tools.examples import EXAMPLE_VARIANTS, stale_examples
from tools.render import variant_names


def test_committed_examples_match_a_fresh_render() -> None:
    stale = stale_examples()
    assert stale == {}, f"stale examples (run `make examples`): {stale}"


def test_every_example_is_a_variant_of_the_matrix() -> None:
    assert set(EXAMPLE_VARIANTS) <= set(variant_names())
