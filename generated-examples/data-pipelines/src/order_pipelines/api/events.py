"""Publishing events over HTTP, and reading back the latest event per key as the consumer saw it."""

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from ..events.catalog import ORDERS, SHIPMENTS, topic_for
from ..events.models import Event, OrdersEvent, ShipmentsEvent
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
    # Unknown (null) for an event stored before it is published: its transaction committed, Debezium publishes it.
    partition: int | None
    offset: int | None


class Problem(BaseModel):
    """Why the request was not served."""

    detail: str
    # On a 503: the id of the event that may or may not be stored. Retrying with it in the body makes the retry
    # the same event, which consumers de-duplicate by event_id.
    event_id: str | None = None


# Every answer a route can give besides its success and FastAPI's own 422, so the OpenAPI document holds them all.
PUBLISH_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "The body cannot be read as JSON text (not UTF-8, for one)."},
    413: {"model": Problem, "description": "The body is larger than the service accepts (max_request_bytes)."},
    500: {"model": Problem, "description": "The schema registry refused the event's schema: a deployment fault."},
    503: {
        "model": Problem,
        "description": "The broker, the database or the registry did not answer in time, or too many "
        "sends wait: the event may still be stored. Retry after Retry-After with the body's event_id in the event, "
        "so a stored first attempt and the retry are one event to consumers.",
        "headers": {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}},
    },
}


async def _publish(publisher: Publisher, event: Event) -> Accepted | JSONResponse:
    try:
        published: Published = await publisher.publish(event)
    except (PublishError, RegistryUnavailableError) as error:
        # An unanswered send may still have been stored: the client gets the event_id to retry with.
        metrics.unavailable(topic_for(event).name, error)
        problem = Problem(detail=str(error), event_id=str(event.event_id))
        return JSONResponse(
            problem.model_dump(), status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": RETRY_AFTER_SECONDS}
        )
    except SchemaRefusedError as error:
        # The registry will not take this event's schema: a deployment fault no retry fixes. Never a silent drop.
        log.error("event %s refused: %s", event.event_id, error)
        raise HTTPException(
            status.HTTP_500_INTERNAL_SERVER_ERROR, detail=f"event schema refused by the registry: {error}"
        ) from error
    except UnpublishableEvent as error:
        # Answered as FastAPI answers any invalid body (422), so the one documented 422 body holds.
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("body",), "msg": str(error), "input": None}]
        ) from error
    return Accepted(**vars(published))


@router.post(
    "/shipments",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    tags=[SHIPMENTS.name],
    responses=PUBLISH_RESPONSES,
)
async def publish_shipments(
    event: Annotated[ShipmentsEvent, Body()],
    publisher: Publisher,
) -> Accepted | JSONResponse:
    """Publish an event on `shipments`; answers once the broker acknowledged it."""
    return await _publish(publisher, event)


@router.get(
    "/shipments/{key}",
    response_model=ShipmentsEvent,
    tags=[SHIPMENTS.name],
    responses={404: {"model": Problem, "description": "This service has processed no event with that key."}},
)
async def latest_shipments(key: str, view: View) -> Event:
    """The latest event for `shipment_id` = key that this service's consumer has processed."""
    event = view.latest(SHIPMENTS, key)
    if event is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no event processed for shipment_id={key}")
    return event


@router.post(
    "/orders",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    tags=[ORDERS.name],
    responses=PUBLISH_RESPONSES,
)
async def publish_orders(
    event: Annotated[OrdersEvent, Body()],
    publisher: Publisher,
) -> Accepted | JSONResponse:
    """Write an event for `orders` with its domain row in one database transaction; answers once it
    committed. Debezium publishes it from the outbox."""
    return await _publish(publisher, event)
