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

from extensions.kafka_events_spec import PATTERNS
from tests.docs.test_skill import Skill, broken_names, installed_default, project_env, run_block, runnable_blocks
from tools.render import REPO, render, variant_answers

DOCS = REPO / "docs"
LESSONS = sorted((DOCS / "lessons").glob("*.md"))
# What the seed's progression asks of every lesson.
LESSON_PARTS = (
    "**You will**",
    "**Time:**",
    "**Prerequisites:**",
    "## The answers that exercise it",
    "## See it",
    "## Break it",
    "## Cleanup",
    "## Self-check",
    "## Exercise",
    "## Skill reflection",
)
LESSON_VARIANTS = ("default", "exactly-once", "at-most-once", "agent-patterns", "task-queue")


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


def test_each_pattern_has_a_page_of_its_own_and_the_patterns_page_lists_them() -> None:
    """Everything about one pattern is on its page, docs/patterns/<name>.md (beside the page of the database plug-in
    the patterns that need PostgreSQL share); docs/patterns.md links them in the order of the answer's choices."""
    pages = {path.stem for path in (DOCS / "patterns").glob("*.md")}
    assert pages == {*PATTERNS, "database"}
    linked = re.findall(r"\]\(patterns/([a-z]+)\.md\)", (DOCS / "patterns.md").read_text())
    assert [name for name in linked if name in PATTERNS] == list(PATTERNS)
    assert "database" in linked


def test_the_lessons_follow_the_seeds_progression() -> None:
    assert [path.stem.split("-", 1)[0] for path in LESSONS] == [f"{n:02d}" for n in range(1, 13)]


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda path: path.stem)
def test_each_lesson_has_its_parts(lesson: Path) -> None:
    text = lesson.read_text()
    for part in LESSON_PARTS:
        assert part in text, f"{lesson.name} lacks {part!r}"
    assert "```mermaid\n" in text, f"{lesson.name} has no diagram"
    checks = text.split("## Self-check", 1)[1].split("\n## ", 1)[0]
    assert len(re.findall(r"^\d\. ", checks, re.MULTILINE)) == 3, f"{lesson.name}: three self-check questions"
    assert checks.count("<summary>Answer</summary>") == 3, f"{lesson.name}: each question with its answer"
    exercise = text.split("## Exercise", 1)[1].split("\n## ", 1)[0]
    assert '??? note "Solution"' in exercise, f"{lesson.name}: the exercise has no solution"
    assert re.search(r"\]\(\.\./[a-z-]+\.md\)", text), f"{lesson.name} links no reference page"


COURSE_SKILL_V0 = re.compile(r"^```markdown skill\n(.*?)^```", re.MULTILINE | re.DOTALL)
COURSE_SKILL_DIFF = re.compile(r"^```diff skill\n(.*?)^```", re.MULTILINE | re.DOTALL)


def skill_reflection(lesson: Path) -> str:
    """A lesson's last part (its skill, in fenced blocks, has headings of its own)."""
    return lesson.read_text().split("\n## Skill reflection\n", 1)[1]


def test_the_course_skill_starts_at_v0_and_each_lesson_deepens_it(tmp_path: Path) -> None:
    """The seed's method: the learner writes a v0 skill in lesson 1, and each lesson gives the prompt to try it
    with, the answer expected, and the diff that captures the lesson. Applied in order with `git apply`, as the
    learner would, every diff fits the skill the lessons before it made, and the skill at the end names only what
    the default render has."""
    folder = tmp_path / ".claude" / "skills" / "agent-tasks-kafka"
    folder.mkdir(parents=True)
    (v0,) = COURSE_SKILL_V0.findall(skill_reflection(LESSONS[0]))
    (folder / "SKILL.md").write_text(v0)
    for lesson in LESSONS:
        reflection = skill_reflection(lesson)
        assert "**Prompt**" in reflection, f"{lesson.name}: no prompt to try the skill with"
        assert "**Expected:**" in reflection, f"{lesson.name}: no answer expected of the prompt"
        (diff,) = COURSE_SKILL_DIFF.findall(reflection)
        added = [line for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
        assert added, f"{lesson.name}: its skill diff adds nothing"
        applied = subprocess.run(["git", "apply", "-"], cwd=folder, input=diff, capture_output=True, text=True)
        assert applied.returncode == 0, f"{lesson.name}: its skill diff does not apply: {applied.stderr}"
        after = (folder / "SKILL.md").read_text()
        assert all(line[1:] in after.splitlines() for line in added), f"{lesson.name}: its lines are not in the skill"
    front = yaml.safe_load((folder / "SKILL.md").read_text().split("---\n")[1])
    assert front["name"] == folder.name
    assert len(front["description"]) > 50
    project = render(variant_answers("default"), tmp_path / "default")
    assert broken_names(Skill(folder, (project,))) == []


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


# -- What the docs, the skills and the service's own advice must never say again -----------------------------------

# Every text a reader or an agent follows: the docs, both skills, the runbook and doctor's advice.
TAUGHT = [
    *sorted(DOCS.rglob("*.md")),
    REPO / "README.md",
    *sorted((REPO / "skills").rglob("*.md")),
    *sorted((REPO / ".claude" / "skills").rglob("*.md")),
    *sorted((REPO / "template" / ".claude" / "skills").rglob("*.jinja")),
    REPO / "template" / "RUNBOOK.md.jinja",
    REPO / "template" / "deploy" / "strimzi" / "README.md.jinja",
    # Each pattern's pieces of those texts, in its own folder.
    *sorted(
        path
        for path in (REPO / "template" / "{% if false %}patterns{% endif %}").rglob("*.jinja")
        if path.name.startswith(("readme", "runbook", "skill", "strimzi-README"))
    ),
    *sorted((REPO / "template" / "src" / "{{package_name}}" / "observability").glob("*diagnosis*")),
    REPO / "template" / "src" / "{{package_name}}" / "api" / "events.py.jinja",
]
WRONG = {
    # The runner polls while handlers run (slow-handlers.md): a smaller batch never cures a storm.
    r"(?i)lower\W+CONSUMER_MAX_RECORDS": "a storm's cause is a blocked event loop or eager rebalancing",
    r"(?i)CONSUMER_MAX_RECORDS\W+so a batch fits": "a storm's cause is a blocked event loop or eager rebalancing",
    # The outbox and CDC are patterns the template renders.
    r"(?i)as they land|, added later\.|not (?:yet )?landed|^- \*\*Later\.\*\*": "outbox and CDC have landed",
    # A 503's event may be stored: the producer says so.
    r"(?i)nothing was published": "an unanswered send may still be stored",
    # Idempotence dedupes one producer session's own retries, not a client's.
    r"(?i)retries never\s+duplicate\.": "only within one producer session",
    # Avro promotes int to long, float, double (and more).
    r"(?i)a changed type does not\b": "Avro promotes some types",
    # Followers fetch from the leader.
    r"L->>F: replicate": "followers pull: they fetch from the leader",
    # Two of three combined broker-controllers gone is a lost KRaft quorum, not NotEnoughReplicas.
    r"(?i)when two are gone": "two combined nodes gone loses the KRaft quorum",
}


@pytest.mark.parametrize("path", TAUGHT, ids=lambda path: str(path.relative_to(REPO)))
def test_nothing_taught_repeats_a_known_error(path: Path) -> None:
    text = path.read_text()
    found = [f"{pattern!r}: {why}" for pattern, why in WRONG.items() if re.search(pattern, text, re.MULTILINE)]
    assert found == [], f"{path.relative_to(REPO)} says what is wrong: {found}"


FENCED = re.compile(r"^```(?![a-z]+ skill\n)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
"""A fenced block of commands: the course skill's blocks (```markdown skill, ```diff skill) are text, not steps."""


def test_commands_that_start_several_members_give_each_its_own_port_and_keep_the_api_out() -> None:
    """Two workers on one machine collide on METRICS_PORT, and `make run` consumes too unless told not to."""
    for lesson in LESSONS:
        for block in FENCED.findall(lesson.read_text()):
            workers = [line for line in block.splitlines() if "make worker" in line]
            if len(workers) < 2:
                continue
            ports = [re.search(r"METRICS_PORT=(\d+)", line) for line in workers]
            assert all(ports), f"{lesson.name}: a second `make worker` needs its own METRICS_PORT"
            assert len({port[1] for port in ports if port}) == len(workers), f"{lesson.name}: ports collide"
            for line in block.splitlines():
                if "make run" in line:
                    assert "CONSUMER_ENABLED=false" in line, f"{lesson.name}: `make run` would join the group"


def test_copier_update_runs_only_in_a_committed_project() -> None:
    """Copier refuses to update a folder that is not a clean git repository, and `make render` makes a plain one."""
    for lesson in LESSONS:
        text = lesson.read_text()
        for block in FENCED.findall(text):
            if "copier update" in block:
                before = block.split("copier update", 1)[0]
                assert "git init" in before, f"{lesson.name}: `copier update` before the render is committed"
        if "copier update" in FENCED.sub("", text):
            assert "git init" in text, f"{lesson.name}: tells to `copier update` without committing the render"


def test_every_see_it_runs_or_names_the_test_that_runs_it() -> None:
    for lesson in LESSONS:
        section = lesson.read_text().split("## See it", 1)[1].split("\n## ", 1)[0]
        named = re.findall(r"Run in CI by `(tests/[\w/.-]+\.py)`", section)
        runnable = "```sh runnable" in section
        assert runnable or named, f"{lesson.name}: See it neither runs in the docs test nor names the test that runs it"
        for path in named:
            assert (REPO / path).is_file(), f"{lesson.name}: {path} is not a test of this repository"


def test_every_break_it_runs_or_says_why_it_is_checked_by_hand() -> None:
    for lesson in LESSONS:
        section = lesson.read_text().split("## Break it", 1)[1].split("\n## ", 1)[0]
        runnable = "```sh runnable" in section
        by_hand = re.search(r"Checked by hand \((?:it |they )?[^)]{10,}\)", section)
        assert runnable or by_hand, f"{lesson.name}: Break it neither runs in the docs test nor says why not"
