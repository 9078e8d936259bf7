"""The service's event contract, asyncapi.yaml (AsyncAPI 3.0), served as JSON at GET /asyncapi.json.

The document is rendered from the spec with the rest of the service; it is read once, as shipped."""

from functools import cache
from pathlib import Path
from typing import Any

import yaml
from fastapi import APIRouter

router = APIRouter()


def document_path() -> Path:
    """asyncapi.yaml at the project root; in a wheel, the copy pyproject.toml puts inside the package."""
    packaged = Path(__file__).resolve().parents[1] / "asyncapi.yaml"
    return packaged if packaged.is_file() else Path(__file__).resolve().parents[3] / "asyncapi.yaml"


@cache
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(document_path().read_text())
    return loaded


# Not in the OpenAPI schema: it is a contract of its own, the Kafka side of the service.
@router.get("/asyncapi.json", include_in_schema=False)
def asyncapi() -> dict[str, Any]:
    return document()
