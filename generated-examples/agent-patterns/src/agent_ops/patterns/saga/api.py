"""`POST /sagas/task-run`: start a task_run saga; 202 with its id once the broker has the start
command. The orchestrator runs it from there (`python -m agent_ops saga show --id ID` follows it)."""

from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel, Field

from ...api.events import RETRY_AFTER_SECONDS, Problem
from ...kafka.client import ERRORS
from ...kafka.port import Producer
from .start import SAGA_ID, start_saga

router = APIRouter()

UNSENT: tuple[type[Exception], ...] = (TimeoutError, *ERRORS.any)


class SagaRequest(BaseModel):
    saga_id: str | None = Field(
        default=None,
        pattern=f"^{SAGA_ID.pattern}$",
        description="Your id for the saga, to retry a start safely; a new one if left out.",
    )
    input: dict[str, Any] = Field(default_factory=dict, description="What every step gets as `call.input`.")


# Every answer besides 202 and FastAPI's own 422, so the OpenAPI document holds them all.
START_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "The body cannot be read as JSON text (not UTF-8, for one)."},
    413: {"model": Problem, "description": "The body is larger than the service accepts (max_request_bytes)."},
    503: {
        "model": Problem,
        "description": "The broker did not take the start command in time; retry with the same saga id.",
        "headers": {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}},
    },
}


class SagaAccepted(BaseModel):
    saga_id: str
    topic: str
    partition: int
    offset: int


@router.post(
    "/sagas/task-run",
    status_code=status.HTTP_202_ACCEPTED,
    responses=START_RESPONSES,
)
async def start_task_run(body: SagaRequest, request: Request) -> SagaAccepted:
    producer: Producer = request.app.state.producer
    settings = request.app.state.settings
    try:
        started = await start_saga(producer, body.input, body.saga_id, settings.publish_timeout_seconds)
    except UNSENT as error:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail=f"the saga was not started: {error!r}",
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        ) from error
    return SagaAccepted(
        saga_id=started.saga_id, topic=started.topic, partition=started.partition, offset=started.offset
    )
