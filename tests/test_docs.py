"""The docs site: built strictly with mkdocs-material, one page per lesson with its parts, and every shell block
marked runnable (```sh runnable) run green in a fresh render of the default service against a real stack."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.test_skill import Skill, broken_names, installed_default, project_env, run_block, runnable_blocks
from tools.render import REPO, render, variant_answers

DOCS = REPO / "docs"
LESSONS = sorted((DOCS / "lessons").glob("*.md"))
# What the seed's progression asks of every lesson.
LESSON_PARTS = ("## The answers that exercise it", "## See it", "## Break it", "## Skill reflection")
LESSON_VARIANTS = ("default", "exactly-once", "at-most-once", "agent-patterns")


def nav_pages(nav: object) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in nav_pages(value)]
    if isinstance(nav, list):
        return [page for item in nav for page in nav_pages(item)]
    return []


def mkdocs_nav() -> list[str]:
    # mkdocs.yml names a Python function for the mermaid fence: read it without constructing that.
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: None)
    config = yaml.load((REPO / "mkdocs.yml").read_text(), Loader=Loader)
    return nav_pages(config["nav"])


def test_docs_build_strictly(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=os.environ | {"NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "site" / "lessons" / "07-delivery-guarantees" / "index.html").exists()


def test_every_page_is_in_the_nav() -> None:
    pages = {str(path.relative_to(DOCS)) for path in DOCS.rglob("*.md")}
    assert pages == set(mkdocs_nav())


def test_the_lessons_follow_the_seeds_progression() -> None:
    assert [path.stem.split("-", 1)[0] for path in LESSONS] == [f"{n:02d}" for n in range(1, 13)]


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda path: path.stem)
def test_each_lesson_has_its_parts(lesson: Path) -> None:
    text = lesson.read_text()
    for part in LESSON_PARTS:
        assert part in text, f"{lesson.name} lacks {part!r}"
    assert "```mermaid\n" in text, f"{lesson.name} has no diagram"
    assert re.search(r"\]\(\.\./[a-z-]+\.md\)", text), f"{lesson.name} links no reference page"


def test_lessons_name_only_what_exists(tmp_path: Path) -> None:
    """Files, make targets, commands, settings and symbols the lessons name: in this repo or in the projects the
    lessons render (one per guarantee, and the patterns)."""
    projects = [render(variant_answers(name), tmp_path / name) for name in LESSON_VARIANTS]
    assert broken_names(Skill(DOCS / "lessons", (REPO, *projects))) == []


def test_docs_runnable_commands_pass(stack_settings: dict[str, str], tmp_path: Path) -> None:
    blocks = runnable_blocks(path.read_text() for path in sorted(DOCS.rglob("*.md")))
    assert len(blocks) >= 5, "the docs' runnable commands went missing"
    env = project_env(stack_settings)
    project = installed_default(tmp_path, env)
    for block in blocks:
        run_block(block, project, env)


def test_readme_try_it_is_make_demos_output() -> None:
    """Each step `make demo` announces appears, in order, in the README's copy of its output."""
    steps = re.findall(r'step\(f?"([^"{]*)', (REPO / "tools" / "demo.py").read_text())
    readme = (REPO / "README.md").read_text()
    shown = [line.removeprefix("==> ") for line in readme.splitlines() if line.startswith("==> ")]
    assert len(shown) == len(steps)
    for prefix, line in zip(steps, shown, strict=True):
        assert line.startswith(prefix), f"README shows {line!r} where make demo says {prefix!r}..."
