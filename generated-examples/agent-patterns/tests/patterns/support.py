"""What a pattern tells the shared tests about itself. Each part of the service (model.parts) has a module beside
this one whose `SUPPORT` says it; a shared test asks the registry (`tests.patterns`) and names no pattern."""

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from agent_ops.events.models import Event
from agent_ops.plugins import Plugin


@dataclass(frozen=True)
class PatternSupport:
    """A pattern's part of the shared tests; each field is optional."""

    stack_services: tuple[str, ...] = ()
    """What the local stack starts for it besides the broker and the registry (`kafka_stack.py up --with`)."""
    stack_settings: tuple[str, ...] = ()
    """The settings of those services the service connects with, as the stack prints them."""
    prepare_stack: Callable[[], None] | None = None
    """Run once the stack is up and its settings exported, as the deploy step would."""
    seed_database: Callable[[str], Awaitable[None]] | None = None
    """Write rows into the database (its URL given) before the Debezium connectors first start."""
    quiet: Callable[[], Plugin] | None = None
    """The pattern's plug-in running nothing of its own inside the app's process: a test of the app alone."""
    published_topics: tuple[str, ...] = ()
    """The pattern's own topics its routes publish on: a 202 of such a route says where its record went."""
    samples: Mapping[type[Event], Callable[[str | None], Event]] = field(default_factory=dict)
    """A valid event of each event type of its own that the spec's models do not describe, with its key if given."""
    ready_fakes: Mapping[str, Callable[[float], Awaitable[bool]]] = field(default_factory=dict)
    """The readiness checks its lifespan adds, each answering yes at once: the probes' tests without a backing
    service."""
