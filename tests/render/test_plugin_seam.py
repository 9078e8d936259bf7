"""Patterns are plug-ins: the core of a rendered service (its app, command line, settings and Kafka clients) runs
whichever patterns were chosen through `plugins.Plugin`, and neither the core's template source nor its rendered code
names a pattern. A pattern lives in its own package; `main.py`, the composition root, lists the chosen ones."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.patterns import NAMES
from tools.render import REPO, render, variant_answers, variant_names

PACKAGE_SOURCE = REPO / "template" / "src" / "{{package_name}}"
# The plug-in packages, and the composition root that lists them: everything else is the core.
PLUG_INS = ("{% if model.patterns %}patterns{% endif %}", "{% if model.database %}database{% endif %}")
COMPOSITION_ROOT = "main.py.jinja"
# A template naming a pattern: a model field of the pattern's, or the chosen list itself.
NAMES_A_PATTERN = re.compile(r"model\.(?:" + "|".join(("patterns", *NAMES)) + r")\b")
# Rendered modules that may import nothing from a plug-in package.
CORE_MODULES = ("app.py", "settings.py", "__main__.py", "plugins.py", "kafka", "api", "observability")


def core_templates() -> list[Path]:
    return [
        path
        for path in PACKAGE_SOURCE.rglob("*")
        if path.is_file()
        and path.relative_to(PACKAGE_SOURCE).parts[0] not in PLUG_INS
        and path.name != COMPOSITION_ROOT
        and "__pycache__" not in path.parts
    ]


def test_the_cores_template_source_names_no_pattern() -> None:
    templates = core_templates()
    assert {"app.py.jinja", "settings.py.jinja", "producer.py.jinja"} <= {path.name for path in templates}
    named = {
        str(path.relative_to(PACKAGE_SOURCE)): sorted(set(NAMES_A_PATTERN.findall(path.read_text())))
        for path in templates
        if NAMES_A_PATTERN.search(path.read_text()) or NAMES_A_PATTERN.search(str(path.relative_to(PACKAGE_SOURCE)))
    }
    assert named == {}, f"core templates that name a pattern: {named}"


def imported_modules(module: Path, package: str, root: Path) -> set[str]:
    """The absolute names of what `module` (a file of `package` under `root`) imports."""
    parts = list(module.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    names = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = parts[: len(parts) - node.level] if node.level else []
            prefix = ".".join([*base, node.module] if node.module else base)
            names |= {prefix} | {f"{prefix}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
    return {name for name in names if name.startswith(package)}


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every variant, rendered (no install: only the source is read)."""
    root = tmp_path_factory.mktemp("seam")
    return {variant: render(variant_answers(variant), root / variant) for variant in variant_names()}


@pytest.mark.parametrize("variant", variant_names())
def test_the_rendered_core_imports_no_plug_in(renders: dict[str, Path], variant: str) -> None:
    project = renders[variant]
    (package,) = [path.name for path in (project / "src").iterdir() if path.is_dir()]
    source = project / "src" / package
    core = [path for name in CORE_MODULES for path in ([source / name] if name.endswith(".py") else [])]
    core += [path for name in CORE_MODULES if not name.endswith(".py") for path in (source / name).rglob("*.py")]
    assert source / "kafka" / "producer.py" in core
    plug_ins = (f"{package}.patterns", f"{package}.database")
    reaching = {
        str(path.relative_to(source)): sorted(
            name for name in imported_modules(path, package, project / "src") if name.startswith(plug_ins)
        )
        for path in core
    }
    assert {module: names for module, names in reaching.items() if names} == {}
