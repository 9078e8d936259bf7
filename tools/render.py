"""Render one named variant of the template from the working tree.

    python -m tools.render VARIANT DEST      # VARIANT names tests/variants/VARIANT.yml

Uncommitted template changes are included: Copier renders the working tree's HEAD plus its dirty changes.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
VARIANTS_DIR = REPO / "tests" / "variants"


def variant_names() -> list[str]:
    return sorted(path.stem for path in VARIANTS_DIR.glob("*.yml"))


def variant_answers(name: str) -> dict[str, Any]:
    path = VARIANTS_DIR / f"{name}.yml"
    if not path.exists():
        raise SystemExit(f"No variant {name!r}; choose one of: {', '.join(variant_names())}")
    answers = yaml.safe_load(path.read_text()) or {}
    if not isinstance(answers, dict):
        raise SystemExit(f"{path} must hold a mapping of answers")
    return answers


def render(data: dict[str, Any], dest: Path) -> Path:
    """Render the template with `data` (other questions take their defaults) into a fresh `dest`."""
    from copier import run_copy

    shutil.rmtree(dest, ignore_errors=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "dirty template changes included" is exactly what we want here
        run_copy(str(REPO), str(dest), data=data, defaults=True, vcs_ref="HEAD", quiet=True, unsafe=True)
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variant", help=f"one of: {', '.join(variant_names())}")
    parser.add_argument("dest", type=Path)
    args = parser.parse_args(argv)
    render(variant_answers(args.variant), args.dest)
    print(f"rendered {args.variant} into {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
