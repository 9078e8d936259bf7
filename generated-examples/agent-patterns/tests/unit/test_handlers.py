"""Each consumed event type reaches its handler method: a new event in the spec fails here, naming the method to
write in handlers.py, until it is written."""

import inspect

from agent_ops.dispatch import HANDLER_METHODS, Dispatcher
from agent_ops.events.catalog import CONSUMED_TOPICS
from agent_ops.handlers import EventHandlers
from agent_ops.read_model import LatestEventByKey
from tests.samples import sample_event


def test_every_consumed_event_type_has_its_handler_method() -> None:
    missing = [
        f"async def {method}(self, event: {event_type.__name__}) -> list[Event]"
        for event_type, method in HANDLER_METHODS.items()
        if not inspect.iscoroutinefunction(getattr(EventHandlers, method, None))
    ]
    assert not missing, "write in EventHandlers (handlers.py): " + "; ".join(missing)


async def test_each_consumed_event_is_handled_and_recorded_in_the_view() -> None:
    view = LatestEventByKey()
    dispatch = Dispatcher(EventHandlers(), view)
    for topic in CONSUMED_TOPICS:
        for event_type in topic.event_types:
            event = sample_event(topic, event_type)
            await dispatch(topic, event)
            assert view.latest(topic, str(getattr(event, topic.key_field))) == event
