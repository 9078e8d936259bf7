"""`copier update` regenerates what the spec determines and keeps what the user wrote.

Each test renders a release of this repo's committed template into a real git repository (the releases of
releases.yml, and HEAD as the next one), edits the user's handlers there as a team would, then changes the spec (the
documented command) or the template, and updates.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import install_asyncapi_parser
from tools.render import REPO

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
}
COPIER = [sys.executable, "-m", "copier"]
USER_LOGIC = '        log.warning("paging on-call for %s", event.task_id)  # the team\'s own logic\n'


def run(
    cwd: Path, *command: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"} | GIT_IDENTITY | (env or {})
    result = subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True)
    if check:
        assert result.returncode == 0, (
            f"`{' '.join(command)}` exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result


def git(cwd: Path, *args: str) -> str:
    return run(cwd, "git", *args).stdout


# The template's releases (version -> commit) and the version HEAD becomes: tags Copier resolves, made in each clone.
RELEASES: dict[str, Any] = yaml.safe_load((REPO / "releases.yml").read_text())
NEXT: str = RELEASES["next"]
USER_SETTING = '    team_channel: str = "#agent-ops"  # the team\'s own setting\n'


@pytest.fixture
def template_repo(tmp_path: Path) -> Path:
    """A clone of this repo's committed template, each release of releases.yml tagged, and HEAD tagged as NEXT."""
    clone = tmp_path / "template"
    git(tmp_path, "clone", "--quiet", str(REPO), str(clone))
    for version, commit in RELEASES["releases"].items():
        git(clone, "tag", version, commit)
    git(clone, "tag", NEXT)
    return clone


def copied(template_repo: Path, tmp_path: Path, release: str, *data: str) -> Path:
    """The default service rendered from `release` (answers `data`, e.g. security=scram-tls) in a git repository,
    with the team's code in one handler."""
    project = tmp_path / "project"
    copy = ["copy", "--trust", "--defaults", *(f"--data={answer}" for answer in data), f"--vcs-ref={release}"]
    run(tmp_path, *COPIER, *copy, str(template_repo), str(project))
    git(project, "init", "--quiet")
    git(project, "add", "-A")
    git(project, "commit", "--quiet", "-m", "generated")
    handlers = project / "src" / "agent_tasks" / "handlers.py"
    text = handlers.read_text()
    handler = re.search(r"^    async def on_task_failed\(.*\n", text, re.MULTILINE)
    assert handler is not None
    handlers.write_text(text.replace(handler.group(0), handler.group(0) + USER_LOGIC))
    git(project, "commit", "--quiet", "-am", "our handler")
    return project


@pytest.fixture
def project(template_repo: Path, tmp_path: Path) -> Path:
    """The default service rendered from HEAD (NEXT). It authenticates (SCRAM over TLS), so that its KafkaUser's
    ACLs are regenerated too."""
    return copied(template_repo, tmp_path, NEXT, "security=scram-tls")


def checks_pass(project: Path, installed_parsers: Path, mypy_cache: str) -> None:
    """What `make install lint typecheck test-unit` runs in the project, each green."""
    run(project, "uv", "sync", "--quiet")
    install_asyncapi_parser(project, installed_parsers)
    run(project, "uv", "run", "ruff", "format", "--check", ".")
    run(project, "uv", "run", "ruff", "check", ".")
    run(project, "uv", "run", "mypy", env={"MYPY_CACHE_DIR": mypy_cache})
    run(project, "uv", "run", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not integration", "tests/unit")


@pytest.mark.parametrize("release", list(RELEASES["releases"]))
def test_an_update_from_an_earlier_release_keeps_the_users_edits_and_conflicts_nowhere(
    template_repo: Path, tmp_path: Path, release: str, installed_parsers: Path, mypy_cache: str
) -> None:
    """A project of an earlier release, a handler and a generated file edited, updated to HEAD as the CHANGELOG says:
    no conflict anywhere (none in a file the user did not touch), both edits kept, and the project's checks green
    with no hand work (a release that moved the user's handlers migrates them)."""
    project = copied(template_repo, tmp_path, release)
    settings = project / "src" / "agent_tasks" / "settings.py"
    text = settings.read_text()
    assert '    log_level: str = "INFO"\n' in text
    settings.write_text(text.replace('    log_level: str = "INFO"\n', '    log_level: str = "INFO"\n' + USER_SETTING))
    git(project, "commit", "--quiet", "-am", "our setting")

    run(project, *COPIER, "update", "--trust", "--defaults", "--vcs-ref=HEAD")

    assert_merged_cleanly(project)
    assert USER_LOGIC in (project / "src" / "agent_tasks" / "handlers.py").read_text(), "the user's handler survives"
    assert USER_SETTING in settings.read_text(), "the user's edit of a generated file survives"
    assert f"_commit: {NEXT}" in (project / ".copier-answers.yml").read_text()
    checks_pass(project, installed_parsers, mypy_cache)


def test_a_spec_field_named_like_the_generated_tests_own_breaks_none_of_them(
    template_repo: Path, tmp_path: Path, stack_settings: dict[str, str], installed_parsers: Path, mypy_cache: str
) -> None:
    """The schema-evolution tests add a field to an event: a spec field of the name they once used (`priority`)
    must not collide with it, on the unit tests' released snapshot nor on the real registry."""
    project = copied(template_repo, tmp_path, NEXT)

    def change(spec: dict[str, Any]) -> None:
        event(spec, "TaskCreated")["fields"].append(
            {"name": "priority", "type": "int", "optional": True, "doc": "Lower runs first."}
        )

    change_spec(project, change)

    assert_merged_cleanly(project)
    assert "priority" in field_names(avsc(project, "TaskCreated"))
    checks_pass(project, installed_parsers, mypy_cache)  # tests/unit/test_avro.py among them
    registry = "tests/integration/test_schema_registry.py"
    passed = run(project, "uv", "run", "pytest", "-q", "-p", "no:cacheprovider", registry, env=stack_settings)
    summary = passed.stdout.strip().splitlines()[-1]
    assert re.search(r"\d+ passed", summary), summary
    assert "skipped" not in summary, summary


def change_spec(project: Path, change: Any) -> dict[str, Any]:
    """Edit spec.yml as a user would (keeping its comments out of the way), commit, and run the documented update."""
    path = project / "spec.yml"
    data = yaml.safe_load(path.read_text())
    change(data["spec"])
    comments = "".join(line + "\n" for line in path.read_text().splitlines() if line.startswith("#"))
    path.write_text(comments + yaml.safe_dump(data, sort_keys=False))
    git(project, "commit", "--quiet", "-am", "change the spec")
    run(project, *COPIER, "update", "--trust", "--defaults", "--vcs-ref=:current:", "--data-file", "spec.yml")
    spec: dict[str, Any] = data["spec"]
    return spec


def event(spec: dict[str, Any], name: str) -> dict[str, Any]:
    return next(e for topic in spec["topics"] for e in topic["events"] if e["name"] == name)


def assert_merged_cleanly(project: Path) -> None:
    rejects = list(project.rglob("*.rej"))
    assert not rejects, rejects
    markers = run(project, "git", "grep", "-n", "-E", "^(<<<<<<<|>>>>>>>) ", check=False).stdout
    assert not markers, markers


def avsc(project: Path, event_name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((project / "schemas" / f"agent_tasks.events.{event_name}.avsc").read_text())
    return schema


def field_names(schema: dict[str, Any]) -> list[str]:
    return [field["name"] for field in schema["fields"]]


def test_a_new_event_and_an_optional_field_regenerate_and_keep_the_handlers(project: Path, mypy_cache: str) -> None:
    def change(spec: dict[str, Any]) -> None:
        event(spec, "TaskCreated")["fields"].append(
            {"name": "due_in_seconds", "type": "int", "optional": True, "doc": "How soon it is due, when known."}
        )
        spec["topics"][0]["events"].append(
            {
                "name": "TaskCancelled",
                "doc": "Someone withdrew the task.",
                "fields": [{"name": "task_id", "type": "string"}, {"name": "reason", "type": "string"}],
            }
        )

    change_spec(project, change)

    assert_merged_cleanly(project)
    handlers = project / "src" / "agent_tasks" / "handlers.py"
    assert USER_LOGIC in handlers.read_text(), "the user's handler survives"
    models = (project / "src" / "agent_tasks" / "events" / "models.py").read_text()
    assert 'due_in_seconds: Int | None = Field(default=None, description="How soon it is due, when known.")' in models
    assert "class TaskCancelled(Event):" in models
    assert "due_in_seconds" in field_names(avsc(project, "TaskCreated"))
    assert field_names(avsc(project, "TaskCancelled"))[-2:] == ["task_id", "reason"]
    assert "on_task_cancelled" in (project / "src" / "agent_tasks" / "dispatch.py").read_text()
    assert "TaskCancelled" in (project / ".copier-answers.yml").read_text()

    # The new event is a failure that names the method to write, not a silent no-op.
    run(project, "make", "install")  # the venv and the AsyncAPI parser the unit tests run
    missing = run(project, "uv", "run", "pytest", "-q", "tests/unit/test_handlers.py", check=False)
    assert missing.returncode != 0
    assert "async def on_task_cancelled(self, event: TaskCancelled)" in missing.stdout
    typed = run(project, "uv", "run", "mypy", check=False, env={"MYPY_CACHE_DIR": mypy_cache})
    assert typed.returncode != 0
    assert "on_task_cancelled" in typed.stdout

    text = handlers.read_text()
    text = text.replace("    TaskCompleted,\n", "    TaskCancelled,\n    TaskCompleted,\n")
    handlers.write_text(
        text
        + "\n    async def on_task_cancelled(self, event: TaskCancelled) -> list[Event]:\n"
        + '        log.info("TaskCancelled %s: %s", event.task_id, event.reason)\n'
        + "        return []\n"
    )
    run(project, "uv", "run", "ruff", "check", ".")
    run(project, "uv", "run", "mypy", env={"MYPY_CACHE_DIR": mypy_cache})
    run(project, "uv", "run", "pytest", "-q", "-p", "no:cacheprovider", "tests/unit")


def test_a_new_topic_brings_its_kafka_topic_acls_and_helm_values(project: Path) -> None:
    def change(spec: dict[str, Any]) -> None:
        spec["topics"].append(
            {
                "name": "agent.task.audits",
                "key": "task_id",
                "partitions": 2,
                "consumed": False,
                "events": [{"name": "TaskAudited", "fields": [{"name": "task_id", "type": "string"}]}],
            }
        )

    change_spec(project, change)

    assert_merged_cleanly(project)
    assert USER_LOGIC in (project / "src" / "agent_tasks" / "handlers.py").read_text()
    topics = list(yaml.safe_load_all((project / "deploy" / "strimzi" / "base" / "kafka-topics.yaml").read_text()))
    assert {"agent.task.audits", "agent.task.audits.dlq"} <= {topic["spec"]["topicName"] for topic in topics}
    user = (project / "deploy" / "strimzi" / "base" / "kafka-user.yaml").read_text()
    assert "name: agent.task.audits" in user.replace('"', "")
    values = yaml.safe_load(next((project / "deploy" / "helm").glob("*/values.yaml")).read_text())
    assert {"name": "agent.task.audits", "partitions": 2, "consumed": False} in values["kafka"]["topics"]
    assert "AGENT_TASK_AUDITS" in (project / "src" / "agent_tasks" / "events" / "catalog.py").read_text()


def test_a_breaking_change_regenerates_and_the_released_schema_check_refuses_it(project: Path) -> None:
    run(project, "uv", "sync", "--quiet")
    run(project, "make", "schema-release")
    git(project, "add", "-A")
    git(project, "commit", "--quiet", "-m", "release 1.0")

    change_spec(project, break_schemas)

    assert_merged_cleanly(project)
    assert avsc(project, "TaskStarted")["fields"][-1] == {
        "name": "attempt",
        "type": "string",
        "doc": "1 for the first run, counting up on retries.",
    }
    assert "deadline" in field_names(avsc(project, "TaskCreated"))
    refused = run(project, "make", "schema-check-released", check=False)
    output = refused.stdout + refused.stderr
    assert refused.returncode != 0, output
    # The subject, the field and the rule, for each break.
    assert (
        "agent.tasks-agent_tasks.events.TaskStarted: BACKWARD broken: field `attempt`: reader type: string not "
        "compatible with writer type: int"
    ) in output, output
    assert (
        "agent.tasks-agent_tasks.events.TaskCreated: BACKWARD broken: field `deadline` was added without a default"
    ) in output, output


def break_schemas(spec: dict[str, Any]) -> None:
    """A field's type changed, and a required field added without a default."""
    attempt = next(f for f in event(spec, "TaskStarted")["fields"] if f["name"] == "attempt")
    attempt["type"] = "string"
    event(spec, "TaskCreated")["fields"].append({"name": "deadline", "type": "timestamp"})


def test_a_breaking_change_is_refused_by_the_live_registry(project: Path, stack_settings: dict[str, str]) -> None:
    run(project, "uv", "sync", "--quiet")
    run(project, "make", "schema-register", env=stack_settings)
    git(project, "add", "-A")  # uv.lock
    git(project, "commit", "--quiet", "-m", "lock")

    change_spec(project, break_schemas)

    refused = run(project, "make", "schema-check", check=False, env=stack_settings)
    output = refused.stdout + refused.stderr
    assert refused.returncode != 0, output
    assert "agent.tasks-agent_tasks.events.TaskStarted" in output, output
    assert "attempt" in output, output
    assert "agent.tasks-agent_tasks.events.TaskCreated" in output, output
    assert "deadline" in output, output


def test_a_template_change_and_a_user_edit_in_one_file_merge_three_ways(
    template_repo: Path, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The user and the template both change settings.py, in different places: git merges the two."""
    settings = project / "src" / "agent_tasks" / "settings.py"
    user_setting = "    audit_log_path: str | None = None  # the team's own setting\n"
    settings.write_text(
        settings.read_text().replace('    log_level: str = "INFO"\n', '    log_level: str = "INFO"\n' + user_setting)
    )
    git(project, "commit", "--quiet", "-am", "our setting")

    template = template_repo / "template" / "src" / "{{package_name}}" / "settings.py.jinja"
    improved = template.read_text().replace(
        '    kafka_bootstrap_servers: str = "127.0.0.1:9092"\n',
        '    kafka_bootstrap_servers: str = Field(default="127.0.0.1:9092", description="host:port, comma separated.")'
        "\n",
    )
    assert improved != template.read_text()
    template.write_text(improved)
    readme = template_repo / "template" / "README.md.jinja"
    readme.write_text(readme.read_text() + "\nA template improvement.\n")
    git(template_repo, "commit", "--quiet", "-am", "describe the bootstrap servers")
    git(template_repo, "tag", "1.1.0")

    run(project, *COPIER, "update", "--trust", "--defaults", "--data-file", "spec.yml", "--vcs-ref=1.1.0")

    assert_merged_cleanly(project)
    merged = settings.read_text()
    assert user_setting in merged, "the user's edit survives"
    assert 'description="host:port, comma separated."' in merged, "the template's change arrives"
    assert "A template improvement." in (project / "README.md").read_text()
    assert USER_LOGIC in (project / "src" / "agent_tasks" / "handlers.py").read_text()
    assert "_commit: 1.1.0" in (project / ".copier-answers.yml").read_text()
