"""Publishing events over HTTP, and reading back the latest event per key as the consumer saw it."""

import logging
from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, status
from pydantic import BaseModel

from ..events.catalog import AGENT_TASKS, topic_for
from ..events.models import AgentTasksEvent, Event
from ..events.serde import RegistryUnavailableError, SchemaRefusedError
from ..kafka.producer import Published, PublishError, UnpublishableEvent
from ..observability import metrics
from .dependencies import Publisher, View

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = "5"

router = APIRouter()


class Accepted(BaseModel):
    event_id: str
    topic: str
    partition: int
    offset: int


async def _publish(publisher: Publisher, event: Event) -> Accepted:
    try:
        published: Published = await publisher.publish(event)
    except (PublishError, RegistryUnavailableError) as error:
        metrics.unavailable(topic_for(event).name, error)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, detail=str(error), headers={"Retry-After": RETRY_AFTER_SECONDS}
        ) from error
    except SchemaRefusedError as error:
        # The registry will not take this event's schema: a deployment fault no retry fixes. Never a silent drop.
        log.error("event %s refused: %s", event.event_id, error)
        raise HTTPException(
            status.HTTP_500_INTERNAL_SERVER_ERROR, detail=f"event schema refused by the registry: {error}"
        ) from error
    except UnpublishableEvent as error:
        # 422 as a number: Starlette renamed its constant (UNPROCESSABLE_ENTITY -> UNPROCESSABLE_CONTENT).
        raise HTTPException(422, detail=str(error)) from error
    return Accepted(**vars(published))


@router.post("/tasks", status_code=status.HTTP_202_ACCEPTED, tags=[AGENT_TASKS.name])
async def publish_agent_tasks(
    event: Annotated[AgentTasksEvent, Body()],
    publisher: Publisher,
) -> Accepted:
    """Publish an event on `agent.tasks`; answers once the broker acknowledged it."""
    return await _publish(publisher, event)


@router.get("/tasks/{key}", response_model=AgentTasksEvent, tags=[AGENT_TASKS.name])
async def latest_agent_tasks(key: str, view: View) -> Event:
    """The latest event for `task_id` = key that this service's consumer has processed."""
    event = view.latest(AGENT_TASKS, key)
    if event is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no event processed for task_id={key}")
    return event
