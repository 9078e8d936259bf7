"""The kafka-events skill, in this repo (.claude/skills/kafka-events-template) and as every generated project carries it
(.claude/skills/kafka-events): its front matter is what agents load, every file, make target, command and code
symbol it names exists, and every shell block it marks runnable (```sh runnable) runs green, in a fresh render
against a real stack.

The conventions the skill follows, so that a check can read it: paths and commands in backticks, a code symbol as
`path/to/file.py:Symbol`, a runnable block fenced as ```sh runnable.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.patterns import PATTERNS, knowledge
from tools.render import REPO, render, variant_answers

REPO_SKILL = REPO / ".claude" / "skills" / "kafka-events-template"
PROJECT_SKILL = Path(".claude") / "skills" / "kafka-events"
# One variant per branch of the templates: consumer or not, each guarantee, the patterns, security.
VARIANTS = ("default", "producer-only", "exactly-once", "at-most-once", "agent-patterns", "mtls", "data-pipelines")

RUNNABLE = re.compile(r"^```sh runnable\n(.*?)^```", re.MULTILINE | re.DOTALL)
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
INLINE = re.compile(r"`([^`\n]+)`")
SYMBOL = re.compile(r"^([\w./-]+\.py):([A-Za-z_]\w*)$")
PATH = re.compile(r"^(?:[\w.*-]+/)*[\w.*-]+\.(?:py|md|yml|yaml|json|avsc|toml|sh|mjs|txt)$|^(?:[\w.-]+/){2,}$")
MAKE = re.compile(r"\bmake((?: [a-z][a-z0-9-]*)+)")
PYTHON_M = re.compile(r"python -m ([a-z_][a-z0-9_]*) ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?")
TARGET = re.compile(r"^([a-z][a-z0-9-]*):", re.MULTILINE)
SETTING = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$")
# Made by a command the skill names next to them, so not in a fresh render.
MADE_BY_COMMANDS = {"schemas/released/", ".stack.env"}


@dataclass(frozen=True)
class Skill:
    """A skill folder and the trees its names are relative to: a rendered project, and for the repo's skill the
    repo too (it names both). The first root is where its runnable commands run."""

    folder: Path
    roots: tuple[Path, ...]

    @property
    def root(self) -> Path:
        return self.roots[0]

    def documents(self) -> list[Path]:
        return sorted(self.folder.rglob("*.md"))

    def text(self) -> str:
        return "\n".join(path.read_text() for path in self.documents())


def front_matter(skill_md: Path) -> dict[str, object]:
    text = skill_md.read_text()
    assert text.startswith("---\n"), f"{skill_md} must open with YAML front matter"
    loaded = yaml.safe_load(text.split("---\n", 2)[1])
    assert isinstance(loaded, dict), f"{skill_md}: the front matter is not a mapping"
    return loaded


def check_front_matter(skill: Skill) -> None:
    front = front_matter(skill.folder / "SKILL.md")
    assert front.get("name") == skill.folder.name, "agents find a skill by its folder: the name must match"
    description = front.get("description")
    assert isinstance(description, str), "the front matter needs a description"
    assert 0 < len(description) <= 1024, "a description is at most 1024 characters (what agents load up front)"
    assert "Use it when" in description, "the description must say when to use the skill"
    assert set(front) <= {"name", "description", "license", "allowed-tools", "metadata"}
    body = (skill.folder / "SKILL.md").read_text().split("---\n", 2)[2]
    assert len(body.splitlines()) <= 80, "SKILL.md's body stays short: details go to references/"


def mentions(text: str) -> Iterator[str]:
    """Everything in backticks, and every line of the code blocks."""
    for block in FENCE.findall(text):
        yield from block.splitlines()[1:-1]
    yield from INLINE.findall(FENCE.sub("", text))


def runnable_blocks(texts: Iterable[str]) -> list[str]:
    return [block for text in texts for block in RUNNABLE.findall(text)]


def exists(skill: Skill, name: str) -> bool:
    """`name` (a path, a glob, or with `<placeholders>`) exists under a root or the skill's folder."""
    if name in MADE_BY_COMMANDS:
        return True
    pattern = re.sub(r"<[^>]+>", "*", name)
    return any(list(base.glob(pattern)) for base in (*skill.roots, skill.folder))


def defines(path: Path, symbol: str) -> bool:
    # A def or class at any depth; an assignment at module level, or in a module-level `if` (Spec is one).
    pattern = rf"^\s*(?:async def|def|class) {symbol}\b|^{symbol}\s*[:=]|^    {symbol} = "
    return re.search(pattern, path.read_text(), re.MULTILINE) is not None


def make_targets(root: Path) -> set[str]:
    makefiles = [root / "Makefile", *sorted((root / "mk").glob("*.mk"))]
    return {target for path in makefiles if path.exists() for target in TARGET.findall(path.read_text())}


def command_words(package: Path) -> set[str]:
    """Quoted words of the package's sources: its subcommands and their choices are among them."""
    sources = package.rglob("*.py")
    return {word for path in sources for word in re.findall(r"[\"']([a-z][a-z-]*)[\"']", path.read_text())}


def known_settings(roots: Iterable[Path]) -> set[str]:
    """Environment variables a project reads (its Settings' fields) or its stack launcher and Makefile print."""
    known: set[str] = set()
    for root in roots:
        for settings in root.glob("src/*/settings.py"):
            known |= {
                name.upper() for name in re.findall(r"^    ([a-z_][a-z0-9_]*):", settings.read_text(), re.MULTILINE)
            }
        for path in (root / "scripts" / "kafka_stack.py", root / "Makefile"):
            if path.exists():
                known |= set(re.findall(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b", path.read_text()))
    return known


def broken_names(skill: Skill) -> list[str]:
    """Every file, make target, `python -m` command and code symbol the skill names that the tree lacks."""
    broken: list[str] = []
    targets = set().union(*(make_targets(root) for root in skill.roots))
    settings = known_settings(skill.roots)
    named_anything = False
    for document in skill.documents():
        prose = FENCE.sub("", document.read_text()).splitlines()
        broken.extend(f"{document.name}: a code span crosses lines: {line}" for line in prose if line.count("`") % 2)
        for mention in mentions(document.read_text()):
            where = f"{document.relative_to(skill.folder)}: {mention.strip()}"
            token = mention.strip()
            if symbol := SYMBOL.match(token):
                named_anything = True
                files = [root / symbol[1] for root in skill.roots if (root / symbol[1]).exists()]
                if not any(defines(file, symbol[2]) for file in files):
                    broken.append(f"{where} (no {symbol[2]} defined in {symbol[1]})")
            elif SETTING.match(token):
                if token not in settings:
                    broken.append(f"{where} (no setting {token})")
            elif PATH.match(re.sub(r"<[^>]+>", "x", token)):
                named_anything = True
                if not exists(skill, token):
                    broken.append(f"{where} (no such file)")
            for words in MAKE.findall(mention):
                for target in words.split():
                    if target not in targets:
                        broken.append(f"{where} (no make target {target})")
            for package, command, argument in PYTHON_M.findall(mention):
                if package == "tests":
                    continue
                packages = [root / "src" / package for root in skill.roots if (root / "src" / package).is_dir()]
                if not packages:
                    broken.append(f"{where} (no package {package})")
                    continue
                words = command_words(packages[0])
                broken.extend(
                    f"{where} (no command {word})" for word in (command, argument) if word and word not in words
                )
    assert named_anything, f"{skill.folder} names no file nor symbol: the check would prove nothing"
    return broken


# -- The template repo's skill --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def repo_skill(tmp_path_factory: pytest.TempPathFactory) -> Skill:
    """The repo's skill names the repo's files and those of the project it generates (the default one here)."""
    project = render(variant_answers("default"), tmp_path_factory.mktemp("repo-skill") / "default")
    return Skill(REPO_SKILL, (REPO, project))


def test_repo_skill_front_matter(repo_skill: Skill) -> None:
    check_front_matter(repo_skill)


def test_repo_skill_names_only_what_exists(repo_skill: Skill) -> None:
    assert broken_names(repo_skill) == []


def test_repo_skill_is_where_agents_look_and_named_apart_from_the_generated_one(repo_skill: Skill) -> None:
    assert repo_skill.folder.parent == REPO / ".claude" / "skills"
    assert repo_skill.folder.name != PROJECT_SKILL.name, "two skills of one name: an agent loads the wrong one"


def test_repo_skill_works_copied_out(tmp_path: Path) -> None:
    """Copied to an agent's own skills folder, its references resolve inside it and its script finds the template
    from the working directory."""
    copy = shutil.copytree(REPO_SKILL, tmp_path / "skills" / REPO_SKILL.name)
    text = (copy / "SKILL.md").read_text()
    for reference in re.findall(r"`((?:references|scripts)/[\w./-]+)`", text):
        assert (copy / reference).exists(), f"{reference} is not in the skill's folder"
    answers = REPO / "tests" / "variants" / "default.yml"
    env = os.environ | {"PATH": f"{REPO / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        ["python", str(copy / "scripts" / "check_spec.py"), str(answers)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok" in result.stdout
    elsewhere = subprocess.run(
        ["python", str(copy / "scripts" / "check_spec.py"), str(answers)],
        cwd=tmp_path,
        env=env | {"KAFKA_EVENTS_TEMPLATE": str(REPO)},
        capture_output=True,
        text=True,
    )
    assert elsewhere.returncode == 0, elsewhere.stdout + elsewhere.stderr


def test_repo_skill_runnable_commands_pass(repo_skill: Skill) -> None:
    blocks = runnable_blocks(path.read_text() for path in repo_skill.documents())
    assert blocks, "the repo skill marks no command runnable"
    env = os.environ | {"PATH": f"{REPO / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    for block in blocks:
        run_block(block, REPO, env)


# -- The skill every generated project carries ----------------------------------------------------------------------


@pytest.fixture(scope="module", params=VARIANTS)
def rendered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Skill:
    project = render(variant_answers(request.param), tmp_path_factory.mktemp("skill") / request.param)
    return Skill(project / PROJECT_SKILL, (project,))


def test_project_skill_front_matter(rendered: Skill) -> None:
    check_front_matter(rendered)


def test_project_skill_names_only_what_exists(rendered: Skill) -> None:
    assert broken_names(rendered) == []


def test_project_skill_names_every_topic_and_event(rendered: Skill) -> None:
    spec = yaml.safe_load((rendered.root / "spec.yml").read_text())["spec"]
    text = rendered.text()
    for topic in spec["topics"]:
        assert f"`{topic['name']}`" in text
        for event in topic["events"]:
            assert f"`{event['name']}`" in text


def test_project_skill_leaves_no_trace_of_what_is_off(rendered: Skill) -> None:
    spec = yaml.safe_load((rendered.root / "spec.yml").read_text())["spec"]
    consumes = any(topic.get("consumed", True) for topic in spec["topics"])
    assert (rendered.folder / "references" / "consuming.md").exists() == consumes
    chosen = variant_answers(rendered.root.name).get("patterns", [])
    assert (rendered.folder / "references" / "patterns.md").exists() == bool(chosen)
    text = rendered.text().lower()
    # The patterns with a section of their own in the skill (tests/patterns/<name>/skill.py).
    for pattern, skill in knowledge("skill", PATTERNS).items():
        assert (skill.SECTION in text) == (pattern in chosen), pattern
        if pattern not in chosen:
            assert pattern not in text, f"the skill mentions {pattern}, which is not chosen"


STACK_ENV = "if [ -f .stack.env ]; then . ./.stack.env; fi"


def test_project_skill_commands_read_the_stack_settings(rendered: Skill) -> None:
    """An agent runs the skill's commands in a fresh shell: each block reads `.stack.env` first."""
    blocks = runnable_blocks(path.read_text() for path in rendered.documents())
    for block in blocks:
        if "uv run" in block:
            assert block.startswith(STACK_ENV + "\n"), f"a block does not read .stack.env first:\n{block}"
    assert STACK_ENV in (rendered.folder / "SKILL.md").read_text(), "SKILL.md must say how commands get the stack"


def test_project_skill_storm_advice_matches_the_runner(rendered: Skill) -> None:
    """The runner polls while handlers run: a storm is a blocked event loop or eager rebalancing, not a batch."""
    text = rendered.text()
    assert not re.search(r"(?i)lower\W+CONSUMER_MAX_RECORDS", text)
    if (rendered.folder / "references" / "consuming.md").exists():
        assert "blocked event loop" in text
        answers = yaml.safe_load((rendered.roots[0] / ".copier-answers.yml").read_text())
        # aiokafka rebalances eagerly; librdkafka's consumer protocol moves only what changes hands.
        assert ("eager" if answers.get("kafka_client", "aiokafka") == "aiokafka" else "KIP-848") in text


def test_project_skill_says_what_raising_partitions_costs(rendered: Skill) -> None:
    for paragraph in re.split(r"\n(?=- |\n)", rendered.text()):
        if re.search(r"(?i)\b(raise|raising|more) partitions\b", paragraph):
            assert re.search(r"(?i)key.{0,80}order|order.{0,80}key", paragraph, re.DOTALL), paragraph


def test_project_skill_replays_dead_letters_with_the_services_command(rendered: Skill) -> None:
    consuming = rendered.folder / "references" / "consuming.md"
    if not consuming.exists():
        return
    package = next((rendered.root / "src").iterdir()).name
    text = consuming.read_text()
    assert f"`python -m {package} dlq replay" in text, "no replay command: an agent would hand-roll a producer"
    assert "Replaying dead letters and resetting offsets" in text
    guarantee = yaml.safe_load((rendered.root / ".copier-answers.yml").read_text())["delivery_guarantee"]
    if guarantee == "at-least-once":
        assert "processed-id store" in text, "a replay is skipped as a duplicate unless the store forgets the id"


def test_project_skill_lists_the_files_the_user_owns(rendered: Skill) -> None:
    skill_md = (rendered.folder / "SKILL.md").read_text()
    assert "Files you own: `spec.yml`" in skill_md
    if (rendered.folder / "references" / "consuming.md").exists():
        package = next((rendered.root / "src").iterdir()).name
        assert f"`src/{package}/handlers.py`" in skill_md.split("Files you own:", 1)[1]


# -- Runnable commands, in a fresh render against the session's stack -------------------------------------------------


def project_env(stack_settings: dict[str, str]) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    uv = shutil.which("uv") or str(REPO / ".venv" / "bin" / "uv")
    return env | stack_settings | {"PATH": f"{Path(uv).parent}{os.pathsep}{env['PATH']}"}


def run_block(block: str, cwd: Path, env: dict[str, str]) -> None:
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"in {cwd}:\n{block}\nexited {result.returncode}:\n{result.stdout}\n{result.stderr}"


def installed_default(tmp_path: Path, env: dict[str, str]) -> Path:
    """A fresh render of the default service with its virtual environment, as `make install` makes it."""
    project = render(variant_answers("default"), tmp_path / "default")
    subprocess.run(["uv", "sync", "--quiet"], cwd=project, env=env, check=True)
    return project


@pytest.fixture(scope="module")
def installed(stack_settings: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A fresh, installed render of the default service, and the environment that reaches the session's stack."""
    env = project_env(stack_settings)
    return installed_default(tmp_path_factory.mktemp("skill-run"), env), env


def test_project_skill_runnable_commands_pass(installed: tuple[Path, dict[str, str]]) -> None:
    project, env = installed
    blocks = runnable_blocks(path.read_text() for path in Skill(project / PROJECT_SKILL, (project,)).documents())
    assert len(blocks) >= 3, "the skill's runnable commands went missing"
    for block in blocks:
        run_block(block, project, env)


def test_project_skill_triage_runs_every_check_and_exits_with_the_worst(installed: tuple[Path, dict[str, str]]) -> None:
    project, env = installed
    result = subprocess.run(
        ["sh", str(PROJECT_SKILL / "scripts" / "triage.sh"), "1"],
        cwd=project,
        env=env | {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"},  # nothing listens there
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert (result.stdout + result.stderr).count("doctor: cannot read the cluster") == 3  # describe, group, lag
