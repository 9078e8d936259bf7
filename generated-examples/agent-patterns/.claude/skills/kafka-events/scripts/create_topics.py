"""Create the service's topics, their dead-letter topics and the chosen patterns' topics where missing, with the
service's own settings.

    uv run python .claude/skills/kafka-events/scripts/create_topics.py

For the local stack only: in production Strimzi's KafkaTopics (deploy/strimzi/base/kafka-topics.yaml) own them.
"""

import asyncio

from agent_ops.kafka.admin import ensure_topics
from agent_ops.main import chosen_plugins
from agent_ops.plugins import chosen
from agent_ops.settings import get_settings


def main() -> None:
    created = asyncio.run(ensure_topics(get_settings(), chosen(chosen_plugins()).topics))
    print(f"created: {', '.join(created)}" if created else "every topic exists already")


if __name__ == "__main__":
    main()
