"""The FastAPI application. Its lifespan owns the Kafka clients: started before the first request, stopped after
the last one. The chosen patterns plug in through `plugins.Plugin`; `main.py` says which."""

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager

from confluent_kafka.schema_registry import AsyncSchemaRegistryClient
from fastapi import FastAPI, Response
from fastapi.telemetry import TelemetryConfig
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .api import asyncapi, events, health
from .api.limits import BodySizeLimit
from .correlation import CorrelationMiddleware, install_log_records
from .dispatch import Dispatcher
from .events.avro import AvroSerde
from .events.serde import EventSerde
from .handlers import EventHandlers
from .kafka.admin import ensure_topics
from .kafka.producer import EventPublisher, create_producer, stop_producer
from .kafka.runners import create_runner
from .observability import metrics, tracing
from .observability.handling import observed
from .plugins import Plugin, Running, hooks_of
from .read_model import LatestEventByKey
from .settings import Settings

NO_NATIVE_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def build_app(
    settings: Settings, plugins: Sequence[Plugin] = (), tracer_provider: TracerProvider | None = None
) -> FastAPI:
    """The app with `plugins`; `tracer_provider` traces it (default: an OTLP exporter when
    OTEL_EXPORTER_OTLP_ENDPOINT is set)."""
    install_log_records()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s [%(correlation_id)s] %(message)s"
    )
    tracer_provider = tracer_provider or tracing.provider_for(settings)
    tracer = None if tracer_provider is None else trace.get_tracer(__name__, tracer_provider=tracer_provider)
    hooks = hooks_of(plugins)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.kafka_create_topics:
            await ensure_topics(settings, (topic for plugin in plugins for topic in plugin.topics))
        registry = AsyncSchemaRegistryClient({"url": settings.schema_registry_url})
        serde = AvroSerde(registry, settings.schema_subject_strategy, settings.schema_auto_register)
        producer = create_producer(settings)
        await producer.start()
        publisher = EventPublisher(
            producer, serde, settings.publish_timeout_seconds, settings.publish_max_in_flight, hooks
        )
        running = Running(settings, serde, producer, publisher)
        patterns = AsyncExitStack()
        view = LatestEventByKey()
        runner = None
        lag_watch = None
        try:
            for plugin in plugins:
                if plugin.lifespan is not None:
                    await patterns.enter_async_context(plugin.lifespan(running))
            if settings.consumer_enabled:
                consumed: EventSerde = serde
                for plugin in plugins:
                    if plugin.consumed_serde is not None:
                        consumed = plugin.consumed_serde(consumed)
                handler = observed(Dispatcher(EventHandlers(), view), tracer)
                runner = create_runner(settings, consumed, handler, producer, hooks)
                await runner.start()
                lag_watch = asyncio.create_task(metrics.watch_lag(settings, settings.metrics_lag_interval_seconds))
            app.state.settings = settings
            app.state.producer = producer
            app.state.publisher = running.publisher
            app.state.checks = running.ready
            app.state.alive = running.alive
            app.state.runner = runner
            app.state.view = view
            yield
        finally:
            # The server has stopped taking requests: finish the message in hand, commit it, then flush sends.
            if lag_watch is not None:
                lag_watch.cancel()
                await asyncio.gather(lag_watch, return_exceptions=True)
            if runner is not None:
                await runner.stop()
            await stop_producer(producer, settings.shutdown_timeout_seconds)
            await patterns.aclose()
            await registry.aclose()
            if tracer_provider is not None:
                tracer_provider.force_flush()

    # FastAPI's native telemetry stays off: the service traces with its own provider (tracing.instrument), and
    # the native check of the global providers costs every request more CPU than the service's own middlewares.
    app = FastAPI(title="order-pipelines", lifespan=lifespan, telemetry=NO_NATIVE_TELEMETRY)
    app.add_middleware(CorrelationMiddleware)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    app.include_router(health.router)
    app.include_router(events.router)
    app.include_router(asyncapi.router)
    for plugin in plugins:
        for router in plugin.routers:
            app.include_router(router)

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    if tracer_provider is not None:
        tracing.instrument(app, tracer_provider)
    return app
