"""The launcher every project carries is the one-file bundle of `launcher/kafka_stack/` (tools/launcher.py)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from launcher.kafka_stack import cli
from launcher.kafka_stack.pieces import PIECES
from tools import launcher as bundler
from tools.stack import LAUNCHER, kafka_stack

REPO = Path(__file__).resolve().parents[2]


def test_the_template_copy_is_the_bundle_of_the_package() -> None:
    assert LAUNCHER == bundler.BUNDLE
    assert bundler.stale() == [], (
        "template/scripts/kafka_stack.py is not the bundle of launcher/kafka_stack: "
        "run `python -m tools.launcher --write` (and edit the package, not the copy)"
    )


def test_check_says_what_differs_when_the_copy_is_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / "kafka_stack.py"
    stale.write_text(bundler.bundle().replace('KAFKA_VERSION = "', 'KAFKA_VERSION = "0.', 1))
    monkeypatch.setattr(bundler, "BUNDLE", stale)
    assert bundler.main(["--check"]) == 1
    out = capsys.readouterr()
    assert '-KAFKA_VERSION = "0.' in out.out
    assert "python -m tools.launcher --write" in out.err


def test_the_bundle_runs_its_help_as_a_script() -> None:
    shown = subprocess.run(
        [sys.executable, str(bundler.BUNDLE), "--help"], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("usage: kafka_stack.py [-h] [--state-dir STATE_DIR]")
    assert "A real local Kafka stack without Docker" in shown.stdout
    assert cli.GENERATED not in shown.stdout, "--help leaves out the notice that the file is generated"
    assert "{up,cert,down,env,status,stop,start,restart}" in shown.stdout
    # The package's own command line prints the same (but for the program's name).
    package = subprocess.run(
        [sys.executable, "-m", "launcher.kafka_stack", "--help"], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert package.returncode == 0, package.stderr
    assert package.stdout.replace("__main__.py", "kafka_stack.py").split() == shown.stdout.split()


def test_the_bundle_opens_with_the_generated_notice_then_the_usage() -> None:
    doc = ast.get_docstring(ast.parse(bundler.BUNDLE.read_text()), clean=False) or ""
    notice, _, usage = doc.partition("\n\n")
    assert notice.startswith(cli.GENERATED)
    assert "kafka-events repository" in notice
    assert usage == cli.__doc__
    assert kafka_stack.usage(kafka_stack.__doc__) == cli.__doc__ == cli.usage(cli.__doc__)


def test_the_bundle_knows_the_pieces_in_the_packages_order() -> None:
    assert (
        list(kafka_stack.PIECES) == list(PIECES) == ["kafka", "kafka-2", "kafka-3", "registry", "postgres", "connect"]
    )


def test_a_package_that_breaks_the_bundles_rules_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "kafka_stack"
    package.mkdir()
    for module in bundler.MODULES:
        (package / f"{module}.py").write_text((bundler.PACKAGE / f"{module}.py").read_text())
    monkeypatch.setattr(bundler, "PACKAGE", package)
    assert bundler.bundle() == bundler.BUNDLE.read_text()

    errors = package / "errors.py"
    original = errors.read_text()
    errors.write_text(original + "\n\ndef free_port() -> int:\n    return 0\n")
    with pytest.raises(bundler.BundleError, match=r"free_port is defined in errors\.py and net\.py"):
        bundler.bundle()
    errors.write_text(original.replace("import sys\n", "import sys\n\nimport yaml\n"))
    with pytest.raises(bundler.BundleError, match="yaml is not in the standard library"):
        bundler.bundle()
    errors.write_text(original.replace("import sys\n", "import sys\n\nfrom .net import free_port\n"))
    with pytest.raises(bundler.BundleError, match="does not come before it in MODULES"):
        bundler.bundle()
    errors.write_text(original)
    (package / "extra.py").write_text('"""More."""\n')
    with pytest.raises(bundler.BundleError, match="list every module"):
        bundler.bundle()
