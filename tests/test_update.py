"""`copier update` brings a template improvement into a generated project and keeps the project's own edits."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tools.render import REPO

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
}


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", *args], cwd=cwd, env=os.environ | GIT_IDENTITY, capture_output=True, text=True, check=True
    )
    return result.stdout


@pytest.fixture
def template_repo(tmp_path: Path) -> Path:
    """A clone of this repo's committed template, tagged as release 1.0.0."""
    clone = tmp_path / "template"
    git(tmp_path, "clone", "--quiet", str(REPO), str(clone))
    git(clone, "tag", "1.0.0")
    return clone


def test_update_merges_a_template_change_and_keeps_user_edits(
    template_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from copier import run_copy, run_update

    for name, value in GIT_IDENTITY.items():  # copier commits in scratch repositories of its own
        monkeypatch.setenv(name, value)

    project = tmp_path / "project"
    run_copy(str(template_repo), str(project), defaults=True, vcs_ref="1.0.0", quiet=True, unsafe=True)
    git(project, "init", "--quiet")
    git(project, "add", "-A")
    git(project, "commit", "--quiet", "-m", "generated")
    handlers = project / "src" / "agent_tasks" / "handlers.py"
    user_logic = "        await notify_on_call(event)  # the team's own logic\n"
    text = handlers.read_text()
    handler = re.search(r"^    async def on_task_failed\(.*\n", text, re.MULTILINE)
    assert handler is not None
    handlers.write_text(text.replace(handler.group(0), handler.group(0) + user_logic))
    git(project, "commit", "--quiet", "-am", "our handler")

    readme = template_repo / "template" / "README.md.jinja"
    readme.write_text(readme.read_text() + "\nA template improvement.\n")
    git(template_repo, "commit", "--quiet", "-am", "improve the README")
    git(template_repo, "tag", "1.1.0")

    run_update(str(project), defaults=True, overwrite=True, quiet=True, unsafe=True, vcs_ref="1.1.0")

    assert "A template improvement." in (project / "README.md").read_text()
    assert user_logic in handlers.read_text()
    assert "_commit: 1.1.0" in (project / ".copier-answers.yml").read_text()
    conflicted = subprocess.run(["git", "diff", "--check"], cwd=project, capture_output=True, text=True)
    assert "conflict" not in conflicted.stdout
