"""Audit log: every event the service publishes and processes, as an append-only, tamper-evident record on
agent.tasks.audit.

The service writes entries to agent.tasks.audit.intake (inside its transactions under exactly-once); the sealer, the
audit log's only writer, chains them per partition with an HMAC and appends them to agent.tasks.audit.
`python -m agent_ops audit verify` finds the first record whose chain breaks; `audit show --key K` prints one
entity's history.
"""
