"""The channels of the fan-out, as the spec names them. Generated from the spec (spec.yml); `copier update`
regenerates it. Each channel's code is its own module, `to_<channel>.py`, which is yours."""

from ...events.catalog import AGENT_TASKS, Topic
from . import to_email, to_push, to_sms
from .channel import Channel

TOPIC: Topic = AGENT_TASKS

CHANNELS: dict[str, Channel] = {
    "email": Channel(
        name="email",
        group="agent-task-workers.email",
        dead_letter="agent.tasks.email.dlq",
        deliver=to_email.deliver,
    ),
    "sms": Channel(
        name="sms",
        group="agent-task-workers.sms",
        dead_letter="agent.tasks.sms.dlq",
        deliver=to_sms.deliver,
    ),
    "push": Channel(
        name="push",
        group="agent-task-workers.push",
        dead_letter="agent.tasks.push.dlq",
        deliver=to_push.deliver,
    ),
}
