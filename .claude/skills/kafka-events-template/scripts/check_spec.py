"""Check answers files before `copier copy`, with the template's own validator: every problem of the spec and of
the patterns chosen, each with its path and what to type instead.

    python .claude/skills/kafka-events-template/scripts/check_spec.py my-answers.yml [more.yml ...]

An answers file holds `spec:` (else copier.yml's default spec is checked) and optionally `patterns:`, like
tests/variants/*.yml. Exit 1 if any is invalid.
Needs pydantic, jinja2 and pyyaml (the repo's `make venv` has them).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import yaml


def find_template() -> Path:
    """The kafka-events checkout: $KAFKA_EVENTS_TEMPLATE, else the first folder holding copier.yml and
    extensions/spec.py above the working directory or above this script (so the skill works copied out)."""
    if named := os.environ.get("KAFKA_EVENTS_TEMPLATE"):
        return Path(named).resolve()
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        for folder in (start, *start.parents):
            if (folder / "copier.yml").is_file() and (folder / "extensions" / "spec.py").is_file():
                return folder
    raise SystemExit(
        "cannot find the kafka-events template: run this from its checkout, or set KAFKA_EVENTS_TEMPLATE to it"
    )


TEMPLATE = find_template()
SPEC_ENTRY = TEMPLATE / "extensions" / "spec.py"


def default_spec() -> object:
    """The spec Copier takes when the answers hold none: copier.yml's default."""
    return yaml.safe_load(yaml.safe_load((TEMPLATE / "copier.yml").read_text())["spec"]["default"])


def load_validator() -> ModuleType:
    """The template's spec package, loaded as Copier loads it: through extensions/spec.py's `load`."""
    loaded = importlib.util.spec_from_file_location("kafka_events_spec_entry", SPEC_ENTRY)
    if loaded is None or loaded.loader is None:
        raise SystemExit(f"cannot load {SPEC_ENTRY}")
    entry = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(entry)
    package: ModuleType = entry.load()
    return package


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    validator = load_validator()
    failed = False
    for name in argv:
        answers = yaml.safe_load(Path(name).read_text()) or {}
        spec = answers.get("spec", default_spec())
        found = validator.problems(spec) or validator.pattern_problems(answers.get("patterns", []), spec)
        print(f"{name}: {'ok' if not found else f'{len(found)} problem(s)'}")
        for problem in found:
            print(f"  {problem}")
        failed = failed or bool(found)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
