"""The pieces `up` knows, by name: listed here rather than registered as each module is imported, so that their order
(the order `--help` and errors name them in) is the same in the package and in its one-file bundle."""

from __future__ import annotations

from .connect import Connect
from .kafka import Kafka, KafkaNode2, KafkaNode3
from .piece import Piece
from .postgres import Postgres
from .registry import Registry

PIECES: dict[str, type[Piece]] = {
    each.name: each for each in (Kafka, KafkaNode2, KafkaNode3, Registry, Postgres, Connect)
}


def piece(cls: type[Piece]) -> type[Piece]:
    """Register a piece under its name (the order of registration is the order `up` starts them in)."""
    PIECES[cls.name] = cls
    return cls
