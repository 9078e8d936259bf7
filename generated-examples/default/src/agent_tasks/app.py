"""The FastAPI application. Its lifespan owns the Kafka clients: started before the first request, stopped after
the last one."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from confluent_kafka.schema_registry import AsyncSchemaRegistryClient
from fastapi import FastAPI

from .api import events, health
from .events.avro import AvroSerde
from .handlers import EventHandlers
from .kafka.admin import ensure_topics
from .kafka.delivery import create_runner
from .kafka.producer import EventPublisher, create_producer, stop_producer
from .settings import Settings, get_settings
from .views import LatestEventByKey


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.kafka_create_topics:
            await ensure_topics(settings)
        registry = AsyncSchemaRegistryClient({"url": settings.schema_registry_url})
        serde = AvroSerde(registry, settings.schema_subject_strategy, settings.schema_auto_register)
        producer = create_producer(settings)
        await producer.start()
        view = LatestEventByKey()
        runner = None
        if settings.consumer_enabled:
            runner = create_runner(settings, serde, EventHandlers(view), producer)
            await runner.start()
        app.state.settings = settings
        app.state.producer = producer
        app.state.runner = runner
        app.state.view = view
        app.state.publisher = EventPublisher(
            producer, serde, settings.publish_timeout_seconds, settings.publish_max_in_flight
        )
        try:
            yield
        finally:
            # The server has stopped taking requests: finish the message in hand, commit it, then flush sends.
            if runner is not None:
                await runner.stop()
            await stop_producer(producer, settings.shutdown_timeout_seconds)
            await registry.aclose()

    app = FastAPI(title="agent-tasks", lifespan=lifespan)
    app.include_router(health.router)
    app.include_router(events.router)
    return app
