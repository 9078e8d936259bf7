"""The saga's topics and group, as derived from the spec; read as `names.X` at use, so a test can point the whole
saga at topics of its own."""

SAGA = "task_run"
COMMANDS_TOPIC = "saga.task-run.commands"
STATE_TOPIC = "saga.task-run.state"
GROUP = "agent-task-workers.saga-task-run"
PARTITIONS = 3
DEAD_LETTER_TOPIC = "saga.task-run.commands.dlq"
"""Where a record on the commands topic that is not a saga command goes, with why in its headers."""
