"""The shared deploy files name no pattern: each plug-in's text in them is a piece of its own, in
template/{% if false %}patterns{% endif %}/<part>/, which a shared file asks for by the name of its place
(`pieces('<place>')`). A new pattern adds its folder and its own files; no shared file changes."""

from __future__ import annotations

import re
from pathlib import Path

from tests.patterns import NAMES
from tools.render import REPO

DEPLOY = REPO / "template" / "deploy"
PARTS = REPO / "template" / "{% if false %}patterns{% endif %}"
# model.parts can hold these: the patterns, and the parts they share (the database of the outbox and the CDC), each
# with its tests in tests/patterns (tests/patterns/test_registry.py holds that list to the render model's).
PART_NAMES = NAMES
# A template naming a pattern: a model field of the pattern's, or the chosen list itself.
NAMES_A_PATTERN = re.compile(r"model\.(" + "|".join((*PART_NAMES, "patterns")) + r")|in model\.patterns")
ASKS_FOR = re.compile(r"pieces\('([^']+)'")


def shared_files(root: Path = DEPLOY) -> list[Path]:
    """The files under `root` (template/deploy, by default) whose name carries no pattern condition."""
    return sorted(
        path
        for path in root.rglob("*")
        if path.is_file()
        and "__pycache__" not in path.parts
        and PARTS not in path.parents
        and not NAMES_A_PATTERN.search(str(path.relative_to(root)))
    )


def places(root: Path = DEPLOY) -> set[str]:
    return {name for path in shared_files(root) for name in ASKS_FOR.findall(path.read_text())}


def test_no_shared_deploy_file_names_a_pattern() -> None:
    files = shared_files()
    assert {"values.yaml.jinja", "configmap.yaml.jinja", "kafka-topics.yaml.jinja"} <= {path.name for path in files}
    named = {
        str(path.relative_to(DEPLOY)): sorted({match.group(0) for match in NAMES_A_PATTERN.finditer(path.read_text())})
        for path in files
        if NAMES_A_PATTERN.search(path.read_text())
    }
    assert named == {}, f"shared deploy files that name a pattern: {named}"


def test_every_piece_belongs_to_a_part_and_fills_a_place() -> None:
    pieces = list(PARTS.rglob("*.jinja"))
    assert pieces
    folders = {path.relative_to(PARTS).parts[0] for path in pieces}
    assert folders <= set(PART_NAMES), f"folders that are no part: {folders - set(PART_NAMES)}"
    # Asked for by the deploy files, or by the README, the RUNBOOK, the AsyncAPI document and the skill.
    # A piece may ask for other parts' pieces too (the database's sections, for the outbox's and the CDC's).
    asked = places(REPO / "template") | {name for path in pieces for name in ASKS_FOR.findall(path.read_text())}
    nowhere = sorted(str(path.relative_to(PARTS)) for path in pieces if path.name not in asked)
    assert nowhere == [], f"pieces no shared file asks for (a misspelt name is dropped silently): {nowhere}"


def test_every_place_is_filled_by_some_part_and_documented() -> None:
    """The deploy files' places (tests/render/test_doc_parts.py holds the others')."""
    filled = {path.name for path in PARTS.rglob("*.jinja")}
    assert places() - filled == set(), "places no part fills"
    readme = (PARTS / "README.md").read_text()
    assert {place for place in places() if f"`{place}`" not in readme} == set(), "places the README does not list"
