"""The patterns the `patterns` answer offers: each a module of its own with its part of the spec (model, cross-checks,
advice), what it needs from the answers, and what it adds to the render model. ALL is the one list: its order is
the order of copier.yml's choices, of the spec's checks and of the plug-ins a service lists."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel

from . import audit, cdc, fanout, outbox, saga

if TYPE_CHECKING:
    from ..spec import Spec


class Pattern(Protocol):
    """What a pattern's module holds."""

    NAME: str

    @property
    def SECTION(self) -> type[BaseModel]:  # read-only: a module constant
        """Its section of the spec (`spec.<NAME>`)."""
        ...

    @property
    def MODEL(self) -> type[BaseModel]:
        """What it adds to the render model (`model.<NAME>`)."""
        ...

    EXAMPLE: str | None
    PROCESS: bool
    ADVICE: dict[str, str]
    KEYS: dict[str, tuple[str, ...]]

    def check(self, spec: Spec, taken: set[str]) -> set[str]:
        """Raise a problem where its section disagrees with the spec or clashes with `taken`; return the topics
        it adds."""
        ...

    def answer_problems(self, spec: dict[str, Any], parsed: Spec) -> list[str]: ...

    def derive(self, spec: Spec, package_name: str) -> dict[str, Any] | None: ...

    def stored_topics(self, section: dict[str, Any]) -> list[str]: ...

    def consumed_topics(self, section: dict[str, Any]) -> list[dict[str, Any]]: ...


ALL: tuple[Pattern, ...] = (fanout, audit, saga, outbox, cdc)
DATABASE = ("outbox", "cdc")
"""The patterns that need the service's PostgreSQL (its migrations, the Debezium connectors): its plug-in `database`."""
