"""The registry of the patterns' parts of the shared tests: each part of the service (model.parts) has a module here,
found by its name, whose `SUPPORT` (a `PatternSupport`) says what the shared tests need to know of it, and which may
hold fixtures of its own (the modules are pytest plugins). A shared test asks here and names no pattern."""

import importlib
from collections.abc import Awaitable, Callable, Sequence
from functools import cache

import pytest

from order_pipelines.events.models import Event
from order_pipelines.plugins import Plugin

from .support import PatternSupport

PARTS = ("database", "outbox", "cdc")
MODULES = tuple(f"tests.patterns.{part}" for part in PARTS)
"""Each part's module, in the order of the service's plug-ins; conftest.py loads them as pytest plugins."""
# conftest.py asks them for the stack's settings before pytest loads them: its assertions are rewritten all the same.
pytest.register_assert_rewrite(*MODULES)


@cache
def supports() -> tuple[PatternSupport, ...]:
    """Imported when first asked for, not with this module: a part's module may use the shared tests' helpers."""
    found: list[PatternSupport] = [importlib.import_module(module).SUPPORT for module in MODULES]
    return tuple(found)


def stack_services() -> tuple[str, ...]:
    return tuple(service for support in supports() for service in support.stack_services)


def stack_settings() -> tuple[str, ...]:
    return tuple(name for support in supports() for name in support.stack_settings)


def prepare_stack() -> None:
    for support in supports():
        if support.prepare_stack is not None:
            support.prepare_stack()


async def seed_database(url: str) -> None:
    for support in supports():
        if support.seed_database is not None:
            await support.seed_database(url)


def quieted(plugins: Sequence[Plugin]) -> list[Plugin]:
    """`plugins`, each pattern's built to run nothing of its own inside the app's process where it says how."""
    quiet = {plugin.name: plugin for plugin in (s.quiet() for s in supports() if s.quiet is not None)}
    return [quiet.get(plugin.name, plugin) for plugin in plugins]


def published_topics() -> frozenset[str]:
    return frozenset(name for support in supports() for name in support.published_topics)


def event_samples() -> dict[type[Event], Callable[[str | None], Event]]:
    return {kind: build for support in supports() for kind, build in support.samples.items()}


def ready_fakes() -> dict[str, Callable[[float], Awaitable[bool]]]:
    return {name: check for support in supports() for name, check in support.ready_fakes.items()}
