"""The command line: `schemas ...` reaches the schema tool, which the Helm chart's hook Job runs."""

import pytest

from order_pipelines import __main__ as cli


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
