"""A read model built by the consumer: the latest event per key on each consumed topic, served over HTTP."""

from collections import defaultdict

from .events.catalog import Topic
from .events.models import Event


class LatestEventByKey:
    """In memory, filled by the events this process consumes from its start; not replayed from the topics, so after
    a restart (or for partitions another replica owns) it knows only what arrived since. Swap in a database table
    shared by the replicas to keep it across restarts."""

    def __init__(self) -> None:
        self._latest: defaultdict[str, dict[str, Event]] = defaultdict(dict)

    def record(self, topic: Topic, event: Event) -> None:
        key = str(getattr(event, topic.key_field))
        current = self._latest[topic.name].get(key)
        if current is None or current.occurred_at <= event.occurred_at:
            self._latest[topic.name][key] = event

    def latest(self, topic: Topic, key: str) -> Event | None:
        return self._latest[topic.name].get(key)
