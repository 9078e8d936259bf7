"""The local stack launcher's one file: the package `launcher/kafka_stack/` bundled into
`template/scripts/kafka_stack.py`, which Copier copies into every generated project.

    python -m tools.launcher --write   # regenerate the template's copy from the package
    python -m tools.launcher --check   # exit 1, saying what differs, when the template's copy is stale

The bundle: a docstring saying the file is generated, then the user-facing text of `cli.py`'s docstring (what
`--help` prints); the standard library imports of every module, merged and sorted once; then each module's body in
MODULES order, its docstring a comment above it and its imports of the package's own names removed. That works
because the package keeps three rules, which `bundle` enforces: a module imports another's names only as
`from .module import name` (from one before it in MODULES), every top-level name is unique across the package, and
a module imports nothing outside the standard library.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import sys
from dataclasses import dataclass
from pathlib import Path

from launcher.kafka_stack.cli import GENERATED

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "launcher" / "kafka_stack"
BUNDLE = REPO / "template" / "scripts" / "kafka_stack.py"
MODULES = (
    "errors",
    "versions",
    "paths",
    "net",
    "processes",
    "downloads",
    "state",
    "java",
    "jvm",
    "maven",
    "tls",
    "kafkawire",
    "pgwire",
    "piece",
    "kafka",
    "registry",
    "postgres",
    "connect",
    "pieces",
    "stack",
    "api",
    "cli",
)
"""The package's modules in the bundle's order: each after every module it imports from."""
NOT_BUNDLED = ("__init__", "__main__")
"""The package's own entry points: `python -m launcher.kafka_stack` runs cli.main, as the bundle does."""
DOCUMENTED_BY = "cli"
"""The module whose docstring is the bundle's (after the generated notice), and what its --help prints."""
HEADER = (
    f"{GENERATED} in the kafka-events repository by `python -m tools.launcher --write`:\n"
    "not for editing here. A change belongs in that package; `copier update` replaces this file whole."
)
LINE_LENGTH = 120


class BundleError(Exception):
    """The package breaks a rule the bundle relies on."""


@dataclass(frozen=True)
class Module:
    name: str
    docstring: str  # its source text, quotes and all
    future: list[str]  # `from __future__ import ...` names
    imports: list[ast.Import | ast.ImportFrom]  # of the standard library
    local: dict[str, list[str]]  # module -> the names imported from it
    body: str
    defines: list[str]


def bundle() -> str:
    """The one file: `template/scripts/kafka_stack.py` as the package makes it."""
    found = {path.stem for path in PACKAGE.glob("*.py")} - set(NOT_BUNDLED)
    if found != set(MODULES):
        raise BundleError(
            f"MODULES in {Path(__file__).name} lists {sorted(MODULES)}, the package holds {sorted(found)}: "
            "list every module, after the ones it imports from"
        )
    modules = [read_module(name) for name in MODULES]
    check_order_and_names(modules)
    documented = next(module for module in modules if module.name == DOCUMENTED_BY)
    future = sorted({name for module in modules for name in module.future})
    parts = ["#!/usr/bin/env python3\n", f'"""{HEADER}\n\n{documented.docstring[3:]}\n']
    if future:
        parts.append(f"\nfrom __future__ import {', '.join(future)}\n")
    parts.append("\n" + "\n".join(import_lines([node for module in modules for node in module.imports])) + "\n")
    for index, module in enumerate(modules):
        # One blank line after the imports, as isort has it; two between modules, as between definitions.
        parts.append(("\n" if index == 0 else "\n\n") + section(module) + "\n\n\n" + module.body + "\n")
    return "".join(parts)


def read_module(name: str) -> Module:
    path = PACKAGE / f"{name}.py"
    source = path.read_text()
    tree = ast.parse(source, filename=str(path))
    where = f"launcher/kafka_stack/{name}.py"
    statements = list(tree.body)
    first = statements[0] if statements else None
    if not (
        isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str)
    ):
        raise BundleError(f"{where}: no module docstring (the bundle shows it as a comment above the module)")
    docstring = ast.get_source_segment(source, first) or ""
    if not docstring.startswith('"""'):
        raise BundleError(f"{where}: its docstring is not a plain triple-quoted string")
    header = 1
    while header < len(statements) and isinstance(statements[header], ast.Import | ast.ImportFrom):
        header += 1
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom) and node not in statements[:header]:
            if isinstance(node, ast.ImportFrom) and node.level:
                raise BundleError(f"{where}:{node.lineno}: imports of the package belong at the top of the module")
            if node in statements:
                raise BundleError(f"{where}:{node.lineno}: imports belong at the top of the module")
    future: list[str] = []
    imports: list[ast.Import | ast.ImportFrom] = []
    local: dict[str, list[str]] = {}
    for node in statements[1:header]:
        assert isinstance(node, ast.Import | ast.ImportFrom)
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            future += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level:
            if node.level != 1 or node.module is None:
                raise BundleError(f"{where}:{node.lineno}: import names as `from .module import name`")
            if any(alias.asname for alias in node.names):
                raise BundleError(f"{where}:{node.lineno}: no `as` for the package's own names (the bundle has one)")
            local.setdefault(node.module, []).extend(alias.name for alias in node.names)
        else:
            for top in (alias.name for alias in node.names) if isinstance(node, ast.Import) else [node.module or ""]:
                if top.split(".")[0] not in sys.stdlib_module_names:
                    raise BundleError(f"{where}:{node.lineno}: {top} is not in the standard library")
            imports.append(node)
    lines = source.splitlines()
    start = statements[header - 1].end_lineno or 0
    between = lines[first.end_lineno or 0 : start]
    if any(line.strip() and not line.startswith(("from ", "import ", " ", ")")) for line in between):
        raise BundleError(f"{where}: only imports between the docstring and the code (a comment there would be lost)")
    body = "\n".join(lines[start:]).strip("\n")
    if not body:
        raise BundleError(f"{where}: nothing but imports")
    return Module(name, docstring, future, imports, local, body, top_level_names(statements[header:]))


def top_level_names(statements: list[ast.stmt]) -> list[str]:
    names: list[str] = []
    for node in statements:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.append(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names += [name.id for target in targets for name in ast.walk(target) if isinstance(name, ast.Name)]
    return names


def check_order_and_names(modules: list[Module]) -> None:
    defined: dict[str, str] = {}  # name -> module
    stdlib = {bound_name(node, alias) for module in modules for node in module.imports for alias in node.names}
    for module in modules:
        where = f"launcher/kafka_stack/{module.name}.py"
        for source, names in module.local.items():
            if source not in MODULES[: MODULES.index(module.name)]:
                raise BundleError(
                    f"{where} imports from .{source}, which does not come before it in MODULES ({Path(__file__).name})"
                )
            for name in names:
                if defined.get(name) != source:
                    raise BundleError(f"{where} imports {name} from .{source}, which does not define it")
        for name in module.defines:
            if name in defined and defined[name] != module.name:
                raise BundleError(f"{name} is defined in {defined[name]}.py and {module.name}.py: one file has one")
            if name in stdlib:
                raise BundleError(f"{where} defines {name}, the name of an import of the standard library")
            defined[name] = module.name
        if "__name__" in module.body and module.name != MODULES[-1]:
            raise BundleError(f"{where} looks at __name__: only the last module may run something as a script")
        if "__doc__" in module.body and module.name != DOCUMENTED_BY:
            raise BundleError(f"{where} reads __doc__, which is {DOCUMENTED_BY}.py's in the bundle")


def bound_name(node: ast.Import | ast.ImportFrom, alias: ast.alias) -> str:
    if alias.asname:
        return alias.asname
    return alias.name.split(".")[0] if isinstance(node, ast.Import) else alias.name


def import_lines(nodes: list[ast.Import | ast.ImportFrom]) -> list[str]:
    """The standard library imports, merged and sorted as ruff's isort sorts them: `import x` lines, then
    `from x import ...` lines, each by module; names constants first, then classes, then the rest."""
    plain: set[tuple[str, str | None]] = set()
    froms: dict[str, set[tuple[str, str | None]]] = {}
    for node in nodes:
        for alias in node.names:
            if isinstance(node, ast.Import):
                plain.add((alias.name, alias.asname))
            else:
                froms.setdefault(node.module or "", set()).add((alias.name, alias.asname))
    lines = [f"import {name}" + (f" as {asname}" if asname else "") for name, asname in sorted(plain, key=module_key)]
    for module in sorted(froms, key=str.lower):
        names = [f"{name} as {asname}" if asname else name for name, asname in sorted(froms[module], key=name_key)]
        line = f"from {module} import {', '.join(names)}"
        if len(line) > LINE_LENGTH:
            line = f"from {module} import (\n" + "".join(f"    {name},\n" for name in names) + ")"
        lines.append(line)
    return lines


def module_key(item: tuple[str, str | None]) -> tuple[str, str]:
    return item[0].lower(), (item[1] or "").lower()


def name_key(item: tuple[str, str | None]) -> tuple[int, str]:
    name = item[0]
    kind = 0 if len(name) > 1 and name.isupper() else 1 if name[:1].isupper() else 2
    return kind, name.lower()


def section(module: Module) -> str:
    """The comment above a module's body: where it comes from, and its docstring."""
    title = f"# --- launcher/kafka_stack/{module.name}.py "
    lines = [title + "-" * (LINE_LENGTH - len(title))]
    if module.name == DOCUMENTED_BY:
        lines.append("# Its docstring is this file's.")
    else:
        text = module.docstring[3:-3].strip("\n")
        lines += [f"# {line}".rstrip() if line.strip() else "#" for line in text.splitlines()]
    for line in lines:
        if len(line) > LINE_LENGTH:
            raise BundleError(f"launcher/kafka_stack/{module.name}.py: a line of its docstring is too long: {line}")
    return "\n".join(lines)


def stale() -> list[str]:
    """How the template's copy differs from the bundle of the package (a unified diff); empty when it is current."""
    current = BUNDLE.read_text() if BUNDLE.exists() else ""
    fresh = bundle()
    if current == fresh:
        return []
    return list(
        difflib.unified_diff(
            current.splitlines(keepends=True),
            fresh.splitlines(keepends=True),
            fromfile="template/scripts/kafka_stack.py",
            tofile="bundle of launcher/kafka_stack",
        )
    )


def shown(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="regenerate template/scripts/kafka_stack.py")
    action.add_argument("--check", action="store_true", help="exit 1 if template/scripts/kafka_stack.py is stale")
    args = parser.parse_args(argv)
    try:
        if args.write:
            BUNDLE.write_text(bundle())
            print(f"wrote {shown(BUNDLE)} ({len(BUNDLE.read_text().splitlines())} lines)")
            return 0
        diff = stale()
    except BundleError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not diff:
        print(f"{shown(BUNDLE)} is the bundle of launcher/kafka_stack")
        return 0
    limit = 60
    sys.stdout.writelines(diff[:limit])
    if len(diff) > limit:
        print(f"... and {len(diff) - limit} more lines of diff")
    print(
        f"{shown(BUNDLE)} is not the bundle of launcher/kafka_stack; "
        "run `python -m tools.launcher --write` (and edit the package, not the copy)",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
