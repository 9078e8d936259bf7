"""The task_run saga as a plug-in: `POST /sagas/task-run`, the orchestrator in this process where
`SAGA_IN_PROCESS` is on (development), and the `saga` command."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ...plugins import Chosen, Command, Plugin, Running
from . import api
from .cli import main
from .orchestrator import SagaOrchestrator
from .settings import SagaSettings
from .steps import TaskRunSteps
from .topics import TOPICS


def plugin(settings: SagaSettings | None = None) -> Plugin:
    saga = settings or SagaSettings()  # read as the app is built, not cached

    @asynccontextmanager
    async def lifespan(running: Running) -> AsyncIterator[None]:
        if not saga.in_process:
            yield
            return
        orchestrator = SagaOrchestrator(running.settings, TaskRunSteps(), saga=saga)
        await orchestrator.start()
        try:
            yield
        finally:
            await orchestrator.stop()

    def saga_command(argv: list[str], prog: str, chosen: Chosen) -> int:
        return main(argv, prog, chosen.topics)

    return Plugin(
        name="saga",
        commands=(
            Command("saga", "run the saga orchestrator, start or show a saga (`saga --help` for more)", saga_command),
        ),
        routers=(api.router,),
        topics=TOPICS,
        lifespan=lifespan,
    )
