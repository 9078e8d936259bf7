"""The sms channel: what to do with each event on notifications.requested.
Yours: `copier update` never overwrites it.

Raising has the event retried (`FANOUT_MAX_ATTEMPTS`), then dead-lettered to
notifications.requested.sms.dlq; the other channels are not held back either way.
After a crash or a pause an event may come again: send idempotently, e.g. keyed by
`event.event_id` at the provider.
"""

import logging

from ...events.models import NotificationsRequestedEvent

log = logging.getLogger(__name__)


async def deliver(event: NotificationsRequestedEvent) -> None:
    log.info("sms: %s %s", event.type, event.event_id)
