"""The channels of the fan-out, as the spec names them. Generated from the spec (spec.yml); `copier update`
regenerates it. Each channel's code is its own module, `to_<channel>.py`, which is yours."""

from ...events.catalog import NOTIFICATIONS_REQUESTED, Topic
from . import to_email, to_push, to_sms
from .channel import Channel

TOPIC: Topic = NOTIFICATIONS_REQUESTED

CHANNELS: dict[str, Channel] = {
    "email": Channel(
        name="email",
        group="notification-senders.email",
        dead_letter="notifications.requested.email.dlq",
        deliver=to_email.deliver,
    ),
    "sms": Channel(
        name="sms",
        group="notification-senders.sms",
        dead_letter="notifications.requested.sms.dlq",
        deliver=to_sms.deliver,
    ),
    "push": Channel(
        name="push",
        group="notification-senders.push",
        dead_letter="notifications.requested.push.dlq",
        deliver=to_push.deliver,
    ),
}
