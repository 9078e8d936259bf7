"""The spec's documentation quotes the validator: the error example in docs/spec.md is the message a bad spec gets."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tools.render import REPO, render, variant_answers


def test_the_spec_docs_error_example_is_the_validators_message(tmp_path: Path) -> None:
    docs = (REPO / "docs" / "spec.md").read_text()
    (example,) = re.findall(r"each with its path and what to type instead, e\.g\.\n\n {4}(.+?)\n\n", docs, re.DOTALL)
    answers = variant_answers("default")
    spec = yaml.safe_load(
        """
        consumer_group: g
        topics:
          - name: things
            key: id
            events:
              - name: ThingMade
                fields: [{name: name, type: string}]
        """
    )
    with pytest.raises(ValueError, match="Validation error") as error:
        render({**answers, "spec": spec}, tmp_path / "project")
    assert " ".join(example.split()) in " ".join(str(error.value).split())
