"""The seam a pattern plugs into: what a pattern adds to the service, so that the app, the command line and the
Kafka clients run every chosen pattern without naming one. A pattern is a package under `patterns/` whose
`plugin()` returns its `Plugin`; `main.py` lists the chosen ones."""

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

from fastapi import APIRouter

from .events.serde import EventSerde
from .kafka.admin import DeclaredTopic
from .kafka.hooks import Hooks, ProcessedHook, PublishedHook
from .kafka.port import Producer
from .kafka.producer import Publisher
from .settings import Settings


@dataclass
class Running:
    """What the app's lifespan has built when the patterns' lifespans start. A pattern may put a publisher of its
    own in place of `publisher`, and add a readiness check (answering within the seconds it is given) and a
    liveness check (is its task still running), each under its name in the probes' answers."""

    settings: Settings
    serde: EventSerde
    producer: Producer
    publisher: Publisher
    ready: dict[str, Callable[[float], Awaitable[bool]]] = field(default_factory=dict)
    alive: dict[str, Callable[[], bool]] = field(default_factory=dict)


@dataclass(frozen=True)
class Chosen:
    """What a command learns of every chosen plug-in: the hooks to call on what it publishes or processes, and the
    topics to create where missing when it runs with `KAFKA_CREATE_TOPICS` on (development)."""

    hooks: Hooks
    topics: tuple[DeclaredTopic, ...]


@dataclass(frozen=True)
class Command:
    """`python -m <service> NAME ...`: `main(argv, prog, chosen)` gets the words after NAME and returns the exit
    status."""

    name: str
    help: str
    main: Callable[[list[str], str, Chosen], int]


@dataclass(frozen=True)
class Plugin:
    """A pattern's parts; the core uses those a pattern has."""

    name: str
    commands: tuple[Command, ...] = ()
    routers: tuple[APIRouter, ...] = ()
    topics: tuple[DeclaredTopic, ...] = ()
    """The pattern's own topics: created where missing at start-up in development, as the spec's are."""
    lifespan: Callable[[Running], AbstractAsyncContextManager[None]] | None = None
    """Entered once the producer started, before the consumer starts; left after the consumer stopped."""
    on_published: PublishedHook | None = None
    on_processed: ProcessedHook | None = None
    consumed_serde: Callable[[EventSerde], EventSerde] | None = None
    """Wraps the serde the consumer reads with, for a topic of the pattern's that is not Avro."""


def hooks_of(plugins: Sequence[Plugin]) -> Hooks:
    return Hooks(
        published=tuple(p.on_published for p in plugins if p.on_published is not None),
        processed=tuple(p.on_processed for p in plugins if p.on_processed is not None),
    )


def chosen(plugins: Sequence[Plugin]) -> Chosen:
    return Chosen(hooks_of(plugins), tuple(topic for plugin in plugins for topic in plugin.topics))
