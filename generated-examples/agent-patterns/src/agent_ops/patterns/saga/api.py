"""`POST /sagas/task-run`: start a task_run saga; 202 with its id once the broker has the start
command. The orchestrator runs it from there (`python -m agent_ops saga show --id ID` follows it)."""

from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel, Field

from .start import SAGA_ID, start_saga

router = APIRouter()


class SagaRequest(BaseModel):
    saga_id: str | None = Field(
        default=None,
        pattern=f"^{SAGA_ID.pattern}$",
        description="Your id for the saga, to retry a start safely; a new one if left out.",
    )
    input: dict[str, Any] = Field(default_factory=dict, description="What every step gets as `call.input`.")


class SagaAccepted(BaseModel):
    saga_id: str


@router.post(
    "/sagas/task-run",
    status_code=status.HTTP_202_ACCEPTED,
    responses={503: {"description": "The broker did not take the start command in time; retry with the same id."}},
)
async def start_task_run(body: SagaRequest, request: Request) -> SagaAccepted:
    producer: AIOKafkaProducer = request.app.state.producer
    settings = request.app.state.settings
    try:
        saga_id = await start_saga(producer, body.input, body.saga_id, settings.publish_timeout_seconds)
    except (KafkaError, TimeoutError) as error:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail=f"the saga was not started: {error!r}",
            headers={"Retry-After": "5"},
        ) from error
    return SagaAccepted(saga_id=saga_id)
