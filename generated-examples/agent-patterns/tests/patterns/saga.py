"""The task_run saga's part of the shared tests: `POST /sagas/task-run` publishes the start
command on the saga's commands topic, and a test of the app alone runs no orchestrator inside it (nothing a saga step
emitted reaches the topics it watches)."""

from agent_ops.patterns.saga import names, plugin
from agent_ops.patterns.saga.settings import SagaSettings
from agent_ops.plugins import Plugin
from tests.patterns.support import PatternSupport


def without_orchestrator() -> Plugin:
    return plugin.plugin(SagaSettings(in_process=False))


SUPPORT = PatternSupport(quiet=without_orchestrator, published_topics=(names.COMMANDS_TOPIC,))
