"""A pattern's documentation and contract pieces live in the pattern's own folder: the shared files (the README, the
runbook, the AsyncAPI contract, the Makefile, pyproject.toml and the skill) name no pattern. Each takes what the chosen
parts (`model.parts`) put at a place with `pieces('<name>')`, from template/{% if false %}patterns{% endif %}/<part>/,
a folder Copier never renders (its name renders empty). Adding a pattern touches its folder alone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.patterns import NAMES
from tools.render import REPO

TEMPLATE = REPO / "template"
PARTS = TEMPLATE / "{% if false %}patterns{% endif %}"
SHARED = sorted(
    [
        *(TEMPLATE / name for name in ("README.md.jinja", "RUNBOOK.md.jinja", "asyncapi.yaml.jinja")),
        *(TEMPLATE / name for name in ("Makefile.jinja", "pyproject.toml.jinja")),
        *(path for path in (TEMPLATE / ".claude").rglob("*") if path.is_file()),
    ]
)
# A template naming a pattern: a model field of the pattern's, or the chosen list itself.
NAMES_A_PATTERN = re.compile(r"model\.(" + "|".join((*NAMES, "patterns")) + r")|in model\.patterns")
# The pieces of these files: what the parts' folders hold with these prefixes (other files' pieces sit beside them).
PREFIXES = ("readme", "runbook", "asyncapi", "makefile", "pyproject", "skill")
TAKES = re.compile(r"pieces\('([^']+)'")


def shown(path: Path) -> str:
    return str(path.relative_to(REPO))


@pytest.mark.parametrize("path", SHARED, ids=shown)
def test_a_shared_file_names_no_pattern(path: Path) -> None:
    assert path.exists()
    named = sorted({match.group(0) for match in NAMES_A_PATTERN.finditer(path.read_text())})
    assert named == [], f"{shown(path)} names a pattern: {named}; move that text into a piece of the pattern's folder"
    assert not NAMES_A_PATTERN.search(str(path.relative_to(TEMPLATE))), f"{shown(path)}: its name names a pattern"


def test_each_part_has_a_folder_of_its_own() -> None:
    assert {path.name for path in PARTS.iterdir() if path.is_dir()} <= set(NAMES)


def pieces() -> list[Path]:
    return sorted(path for path in PARTS.glob("*/*") if path.is_file() and path.name.startswith(PREFIXES))


def test_every_piece_taken_exists_and_every_piece_is_taken() -> None:
    """`pieces('x')` skips a part without x, so a misspelt name would render nothing, silently."""
    taken = {name for path in [*SHARED, *pieces()] for name in TAKES.findall(path.read_text())}
    assert taken, "no shared file takes a piece"
    held = {path.name for path in pieces()}
    assert taken - held == set(), "pieces taken that no part holds"
    assert held - taken == set(), "pieces that no file takes"
