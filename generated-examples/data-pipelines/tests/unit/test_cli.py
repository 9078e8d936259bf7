"""The command line: `schemas ...` reaches the schema tool, which the Helm chart's hook Job runs; each chosen
plug-in's commands are reached by name."""

from typing import Any

import pytest

from order_pipelines import __main__ as cli
from order_pipelines.kafka.admin import DeclaredTopic
from order_pipelines.main import chosen_plugins
from order_pipelines.plugins import Chosen, Command, Plugin


def test_schemas_register_runs_the_schema_tool(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[list[str], str | None]] = []

    def schemas_main(argv: list[str] | None = None, prog: str | None = None) -> int:
        calls.append((list(argv or []), prog))
        return 3

    monkeypatch.setattr(cli, "schemas_main", schemas_main)
    assert cli.main(["schemas", "register"]) == 3
    assert cli.main(["schemas", "check-released", "--schemas", "elsewhere"]) == 3
    assert calls == [
        (["register"], "python -m order_pipelines schemas"),
        (["check-released", "--schemas", "elsewhere"], "python -m order_pipelines schemas"),
    ]


def test_schemas_help_is_the_schema_tools(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["schemas", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m order_pipelines schemas")
    assert "register" in out


def test_schemas_check_released_works_offline(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["schemas", "check-released"]) == 0
    assert "check-released: every schema is fine" in capsys.readouterr().out


def test_a_plug_in_command_gets_its_words_its_name_and_every_plug_ins_hooks_and_topics(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[list[str], str, Chosen]] = []

    def record(argv: list[str], prog: str, chosen: Chosen) -> int:
        calls.append((argv, prog, chosen))
        return 4

    topic = DeclaredTopic("mine.events", 3, {"retention.ms": "60000"})
    hook = Plugin("hooked", on_published=record_nothing, topics=(topic,))
    plugins = (Plugin("mine", commands=(Command("mine", "a command of my own", record),)), hook)
    monkeypatch.setattr(cli, "chosen_plugins", lambda: plugins)
    assert cli.main(["mine", "run", "--fast"]) == 4
    ((argv, prog, chosen),) = calls
    assert (argv, prog) == (["run", "--fast"], "python -m order_pipelines mine")
    assert chosen.hooks.published == (record_nothing,)
    assert chosen.topics == (topic,)


def test_the_help_lists_every_chosen_plug_ins_commands(capsys: pytest.CaptureFixture[str]) -> None:
    commands = [command for plugin in chosen_plugins() for command in plugin.commands]
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in commands:
        assert f"    {command.name} " in out, f"{command.name} missing from the help"
    for command in commands:
        with pytest.raises(SystemExit) as exit_info:
            cli.main([command.name, "--help"])
        assert exit_info.value.code == 0, command.name
        assert capsys.readouterr().out.startswith(f"usage: python -m order_pipelines {command.name}")


async def record_nothing(producer: Any, topic: str, key: bytes, headers: Any) -> Any:
    raise AssertionError("not called")
