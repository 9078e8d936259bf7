"""The service's two client answers in the chaos table: each row that drives a service runs once per chosen answer,
on a project rendered with it, and is named with its client. Standard library only (run.py's verdicts use it)."""

from __future__ import annotations

from typing import Any

CLIENTS = ("aiokafka", "confluent-kafka")
"""The `kafka_client` answers, in table order."""
LABEL = {"aiokafka": "aiokafka", "confluent-kafka": "librdkafka"}
"""How a row's name says its client."""
CHOICES = (*CLIENTS, "both")


def chosen(choice: str) -> list[str]:
    """The answers `--client` names."""
    return list(CLIENTS) if choice == "both" else [choice]


def project(name: str, client: str) -> str:
    """The project that renders `name`'s answers with `client`."""
    return name if client == CLIENTS[0] else f"{name}-{LABEL[client]}"


def answers(answers: dict[str, Any], client: str) -> dict[str, Any]:
    return answers | {"kafka_client": client}


def unrendered(project: str) -> str:
    """A project's name without its client."""
    for client in CLIENTS[1:]:
        project = project.removesuffix(f"-{LABEL[client]}")
    return project


def named(row: str, client: str) -> str:
    return f"{row} ({LABEL[client]})"


def base(name: str) -> str:
    """A row's name without its client."""
    for label in LABEL.values():
        if name.endswith(f" ({label})"):
            return name.removesuffix(f" ({label})")
    return name


def client_of(name: str) -> str | None:
    """The answer a row's name says, if it says one."""
    return next((client for client, label in LABEL.items() if name.endswith(f" ({label})")), None)
