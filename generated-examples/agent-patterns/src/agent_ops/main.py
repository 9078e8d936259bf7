"""The service as deployed: the core with the plug-ins chosen when it was generated. Uvicorn serves
`create_app`; `python -m agent_ops` runs the commands. A plug-in of your own goes in `chosen_plugins`."""

from collections.abc import Sequence

from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider

from .app import build_app
from .patterns.audit import plugin as audit
from .patterns.fanout import plugin as fanout
from .patterns.saga import plugin as saga
from .plugins import Plugin
from .settings import Settings, get_settings


def chosen_plugins() -> tuple[Plugin, ...]:
    """The plug-ins, each reading its own settings from the environment."""
    return (fanout.plugin(), audit.plugin(), saga.plugin())


def create_app(
    settings: Settings | None = None,
    tracer_provider: TracerProvider | None = None,
    plugins: Sequence[Plugin] | None = None,
) -> FastAPI:
    """The app (a Uvicorn factory); a test may pass `plugins` built with settings of its own."""
    return build_app(settings or get_settings(), chosen_plugins() if plugins is None else plugins, tracer_provider)
