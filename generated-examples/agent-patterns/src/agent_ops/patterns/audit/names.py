"""The audit log's topics and the sealer's group, as derived from the spec; read as `names.X` at use, so a test
can point the whole audit at topics of its own."""

AUDIT_TOPIC = "agent.tasks.audit"
INTAKE_TOPIC = "agent.tasks.audit.intake"
SEALER_GROUP = "agent-task-workers.audit-sealer"
DEAD_LETTER_TOPIC = "agent.tasks.audit.intake.dlq"
"""Where a record on the intake that is not an audit entry goes, with why in its headers."""
