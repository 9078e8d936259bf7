"""The task_run saga: its steps run one after another, each at most once to completion; when one fails
or times out, the compensations of the steps completed before it run in reverse order, each once.

An orchestrator owns every saga's state, kept in the compacted topic saga.task-run.state keyed by saga id. Each
step is a command on saga.task-run.commands; the orchestrator consumes it, runs the step's handler (steps.py,
yours), and commits the saga's new state, the next command and the consumed offset in one Kafka transaction. A
process killed at any point resumes from the last committed state: the command whose outcome was not committed
comes again, and a repeated command is recognised by its (saga id, step, action, attempt) and skipped.

Start a saga with `POST /sagas/task-run`, `python -m agent_ops saga start`, or `start_saga()`.
"""
