"""Running the real app, lifespan and all, against the real broker inside a test."""

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from order_pipelines.main import create_app
from order_pipelines.settings import Settings


def service_settings(bootstrap: str, unique: str, **overrides: Any) -> Settings:
    """Settings for one test: its own consumer group, short polls and retries."""
    values: dict[str, Any] = {
        "kafka_bootstrap_servers": bootstrap,
        # Exported by the `local_stack` fixture; without a registry, publishing answers 503.
        "schema_registry_url": os.environ.get("SCHEMA_REGISTRY_URL", "http://127.0.0.1:9"),
        "kafka_consumer_group": f"test-{unique}",
        "kafka_client_id": f"test-{unique}",
        "consumer_poll_timeout_ms": 100,
        "handler_retry_backoff_seconds": 0.01,
    }
    # Settings ignore names they do not have (a pattern's live in its own settings): a typo here would be silent.
    unknown = sorted(set(overrides) - set(Settings.model_fields))
    if unknown:
        raise TypeError(f"Settings have no {', '.join(unknown)}")
    return Settings(**(values | overrides))


@asynccontextmanager
async def running_service(settings: Settings, app: FastAPI | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan entered, once it reports ready; an HTTP client bound to it."""
    app = app or create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            await eventually(lambda: ready(client), within=60)
            yield client


async def ready(client: httpx.AsyncClient) -> bool:
    return (await client.get("/health/ready")).status_code == 200


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 30, interval: float = 0.1) -> None:
    """Wait until the async `check` returns true, or fail after `within` seconds."""
    async with asyncio.timeout(within):
        while True:
            if await check():
                return
            await asyncio.sleep(interval)
