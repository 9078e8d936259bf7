"""Objects the routes need, owned by the app's lifespan and handed out per request."""

from typing import Annotated

from fastapi import Depends, Request

from ..kafka.producer import EventPublisher


async def get_publisher(request: Request) -> EventPublisher:
    publisher: EventPublisher = request.app.state.publisher
    return publisher


Publisher = Annotated[EventPublisher, Depends(get_publisher)]
