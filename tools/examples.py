"""generated-examples/ holds the committed renders that teach, so a reviewer sees what users get: the default
service, the one with the agent patterns and the one with the data pipelines (their answers say which patterns).
Every other variant is rendered, checked and tested by `make test` without a copy in the repo.

    python -m tools.examples           # exit 1 and list the differences if any example is stale
    python -m tools.examples --write   # re-render them all

The answers file loses `_commit` and `_src_path`: they name a commit and a folder of whoever rendered it. The files
a render copies from the template as they are (VERBATIM: the local stack launcher, the AsyncAPI parser's lock file)
are left out: they are the template's own files, byte for byte, and were most of the examples' lines.
"""

from __future__ import annotations

import argparse
import filecmp
import re
import shutil
import sys
import tempfile
from pathlib import Path

from tools.render import REPO, render, variant_answers

EXAMPLES = REPO / "generated-examples"
EXAMPLE_VARIANTS = ("default", "agent-patterns", "data-pipelines")
UNSTABLE_ANSWERS = re.compile(r"^_(commit|src_path): .*\n", re.MULTILINE)
VERBATIM = ("scripts/kafka_stack.py", "tools/asyncapi/package-lock.json")
"""Copied into every render unchanged from template/: read them there."""
README = """# Generated examples

What the template renders today for three variants of `tests/variants/`: the default service, the agent patterns
and the data pipelines (each one's `.copier-answers.yml` says which patterns it chose). `make examples` writes
them; `make test` fails when one is stale. Every other variant is rendered, checked and tested by `make test` without
a copy here.

Left out of each, as they are copied from the template unchanged: {verbatim}.
"""


def render_example(variant: str, dest: Path) -> Path:
    render(variant_answers(variant), dest)
    answers = dest / ".copier-answers.yml"
    answers.write_text(UNSTABLE_ANSWERS.sub("", answers.read_text()))
    for name in VERBATIM:
        copied = dest / name
        if copied.read_bytes() != (REPO / "template" / name).read_bytes():
            raise RuntimeError(f"{name} is no longer the template's own file, byte for byte: commit it in examples")
        copied.unlink()
        if not any(copied.parent.iterdir()):
            copied.parent.rmdir()  # git keeps no empty folder
    return dest


def readme() -> str:
    return README.format(verbatim=", ".join(f"`{name}` (template/{name})" for name in VERBATIM))


def differences(left: Path, right: Path) -> list[str]:
    """Paths (relative to the roots) that differ between two trees, or exist in only one of them."""
    found: list[str] = []

    def walk(cmp: filecmp.dircmp[str], prefix: Path) -> None:
        found.extend(str(prefix / name) for name in cmp.left_only + cmp.right_only + cmp.diff_files + cmp.funny_files)
        for name, sub in cmp.subdirs.items():
            walk(sub, prefix / name)

    walk(filecmp.dircmp(left, right, ignore=[]), Path())
    return sorted(found)


def stale_examples() -> dict[str, list[str]]:
    stale: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for variant in EXAMPLE_VARIANTS:
            fresh = render_example(variant, Path(scratch) / variant)
            committed = EXAMPLES / variant
            diff = differences(fresh, committed) if committed.exists() else ["(missing)"]
            if diff:
                stale[variant] = diff
        if not (EXAMPLES / "README.md").exists() or (EXAMPLES / "README.md").read_text() != readme():
            stale["README.md"] = ["(stale)"]
        extra = (
            {p.name for p in EXAMPLES.iterdir() if p.is_dir()} - set(EXAMPLE_VARIANTS) if EXAMPLES.exists() else set()
        )
        for name in sorted(extra):
            stale[name] = ["(not an example: see EXAMPLE_VARIANTS)"]
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="re-render every example")
    args = parser.parse_args(argv)
    if args.write:
        shutil.rmtree(EXAMPLES, ignore_errors=True)
        for variant in EXAMPLE_VARIANTS:
            render_example(variant, EXAMPLES / variant)
            print(f"rendered generated-examples/{variant}")
        (EXAMPLES / "README.md").write_text(readme())
        return 0
    stale = stale_examples()
    for variant, paths in stale.items():
        print(f"generated-examples/{variant} is stale: {', '.join(paths[:10])}{' ...' if len(paths) > 10 else ''}")
    if stale:
        print("Run `make examples` and commit the result.")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
