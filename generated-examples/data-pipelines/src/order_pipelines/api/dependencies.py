"""Objects the routes need, owned by the app's lifespan and handed out per request."""

from typing import Annotated

from fastapi import Depends, Request

from ..kafka.producer import Publisher as PublishesEvents
from ..read_model import LatestEventByKey


async def get_publisher(request: Request) -> PublishesEvents:
    publisher: PublishesEvents = request.app.state.publisher
    return publisher


async def get_view(request: Request) -> LatestEventByKey:
    view: LatestEventByKey = request.app.state.view
    return view


Publisher = Annotated[PublishesEvents, Depends(get_publisher)]
View = Annotated[LatestEventByKey, Depends(get_view)]
