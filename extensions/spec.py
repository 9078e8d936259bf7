"""The entry copier.yml names in `_jinja_extensions`: it loads the `kafka_events_spec` package beside it and hands
Copier its `SpecExtension`. It adds these filters:

    {{ spec | spec_problems }}               the problems, one a line, or "" when the spec is valid
    {{ spec | spec_consumes }}               whether the service consumes a topic
    {{ spec | spec_queues }}                 whether a topic is a queue (`delivery: queue`, a share group)
    {{ patterns | pattern_problems(spec) }}  what the chosen patterns miss in the spec, one a line, or ""
    {{ spec | spec_model(package_name, patterns) }}
                                             the normalised model as JSON (names in every casing, types per language)

Copier imports this file by its path (copier-template-extensions), which makes the template need trust:
`copier copy --trust` / `copier update --trust`. `copier update` loads two releases of the template in one process,
each with its own package: the package is imported afresh from beside this file every time.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

PACKAGE = "kafka_events_spec"


def load() -> ModuleType:
    """The package beside this file, never one an earlier load (another release of the template) left imported."""
    for name in [name for name in sys.modules if name == PACKAGE or name.startswith(f"{PACKAGE}.")]:
        del sys.modules[name]
    here = str(Path(__file__).resolve().parent)
    sys.path.insert(0, here)
    try:
        return importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(here)


SpecExtension = load().SpecExtension
