"""The audit log's part of the shared tests: a test of the app alone runs no sealer inside it (until a sealer has
joined its group, /health/ready answers 503)."""

from agent_ops.patterns.audit import plugin
from agent_ops.patterns.audit.settings import AuditSettings
from agent_ops.plugins import Plugin
from tests.patterns.support import PatternSupport


def without_sealer() -> Plugin:
    return plugin.plugin(AuditSettings(seal_in_process=False))


SUPPORT = PatternSupport(quiet=without_sealer)
