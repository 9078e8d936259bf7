"""A saga's state, its commands, and how each step's outcome moves the state on: pure functions, no Kafka.

The state names the one command the saga waits for (`pending`). A command that is not the pending one is a repeat
(redelivered, or sent again by a client) and changes nothing: that is what makes each step and each compensation
complete at most once, whatever is delivered twice."""

import json
import uuid
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

Action = Literal["start", "run", "compensate"]
Status = Literal["running", "compensating", "completed", "compensated", "failed"]

RUNNING: Status = "running"
COMPENSATING: Status = "compensating"
COMPLETED: Status = "completed"
COMPENSATED: Status = "compensated"
FAILED: Status = "failed"
TERMINAL: frozenset[str] = frozenset({COMPLETED, COMPENSATED, FAILED})
"""A saga in one of these waits for nothing: every step completed, every completed step undone, or a compensation
that kept failing (a human's turn)."""


@dataclass(frozen=True)
class StepSpec:
    name: str
    compensation: str | None
    timeout_seconds: float


@dataclass(frozen=True)
class Command:
    """What the orchestrator is asked to do next for one saga; keyed by saga id on the commands topic."""

    saga_id: str
    action: Action
    step: str = ""
    attempt: int = 1
    deadline: float | None = None
    """Epoch seconds by which the step's handler must have finished; None until an orchestrator takes the command
    (see `taken`). A command waiting behind a backlog waits for free; a process restarted mid-step gets only what
    is left of its step's time."""
    input: dict[str, Any] | None = None
    command_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, value: bytes | None) -> "Command":
        """The command `value` holds; ValueError when it holds none (a tombstone, other bytes, a wrong field)."""
        if not value:
            raise ValueError("not a saga command: no value")
        try:
            data = json.loads(value)
        except ValueError as error:  # not JSON, or not UTF-8
            raise ValueError(f"not a saga command: {error}") from error
        if not isinstance(data, dict) or data.get("action") not in {"start", "run", "compensate"}:
            raise ValueError("not a saga command")
        try:
            command = cls(**data)
        except TypeError as error:
            raise ValueError(f"not a saga command: {error}") from error
        fields_ok = (
            isinstance(command.saga_id, str)
            and command.saga_id
            and isinstance(command.step, str)
            and isinstance(command.attempt, int)
            and isinstance(command.deadline, int | float | None)
            and isinstance(command.input, dict | None)
            and isinstance(command.command_id, str)
        )
        if not fields_ok:
            raise ValueError("not a saga command: a field of the wrong type")
        return command

    def same_as(self, other: "Command") -> bool:
        """Whether `other` asks for the same thing: a repeat of this command, whatever its command id."""
        return (self.saga_id, self.action, self.step, self.attempt) == (
            other.saga_id,
            other.action,
            other.step,
            other.attempt,
        )


@dataclass(frozen=True)
class SagaState:
    """One saga as the state topic keeps it; the latest record per saga id is the truth."""

    saga_id: str
    status: Status
    input: dict[str, Any]
    completed: tuple[str, ...] = ()
    timed_out: tuple[str, ...] = ()
    """Steps whose run timed out: their effect may exist, so they are compensated too (first, as the latest)."""
    compensated: tuple[str, ...] = ()
    results: dict[str, Any] = field(default_factory=dict)
    pending: Command | None = None
    error: str | None = None
    correlation_id: str | None = None
    updated_at: float = 0.0

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, value: bytes) -> "SagaState":
        data = json.loads(value)
        pending = data.pop("pending")
        return cls(
            **data
            | {
                "completed": tuple(data["completed"]),
                "timed_out": tuple(data.get("timed_out", ())),
                "compensated": tuple(data["compensated"]),
                "pending": Command(**pending) if pending is not None else None,
            }
        )

    def expects(self, command: Command) -> bool:
        return self.pending is not None and self.pending.same_as(command)


@dataclass
class StepCall:
    """What a step or compensation handler gets: which saga, which step, the saga's input and earlier results."""

    saga_id: str
    step: str
    handler: str
    action: Action
    attempt: int
    input: dict[str, Any]
    results: dict[str, Any]
    records: list[tuple[str, bytes | None, bytes]] = field(default_factory=list)

    @property
    def idempotency_key(self) -> str:
        """The same for every run of this step (or of its compensation) in this saga, and only for those."""
        return f"{self.saga_id}/{self.handler}"

    def send(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        """Send a record when the step's outcome commits, in the same Kafka transaction: a run whose outcome does not
        commit leaves no record a read_committed consumer sees."""
        self.records.append((topic, key, value))


@dataclass(frozen=True)
class Succeeded:
    result: dict[str, Any] | None = None


@dataclass(frozen=True)
class Failed:
    error: str
    timed_out: bool = False
    """The handler was cut short at its deadline: what it did so far may have taken effect."""


Outcome = Succeeded | Failed


def _command(saga_id: str, action: Action, step: StepSpec, attempt: int = 1) -> Command:
    return Command(saga_id, action, step.name, attempt)


def taken(state: SagaState, steps: tuple[StepSpec, ...], now: float, backoff_seconds: float = 0.0) -> SagaState:
    """`state` as an orchestrator takes its pending command at `now`: the step's time (after `backoff_seconds`, a
    retry's pause) counts from here. The orchestrator commits this state before the handler runs, so a command
    taken before keeps its deadline: the process that took it may have died mid-step."""
    if state.pending is None or state.pending.deadline is not None:
        return state
    step = next(step for step in steps if step.name == state.pending.step)
    deadline = now + backoff_seconds + step.timeout_seconds
    return replace(state, pending=replace(state.pending, deadline=deadline))


def begin(command: Command, steps: tuple[StepSpec, ...], now: float, correlation_id: str | None = None) -> SagaState:
    """The state of a saga a start command opens: waiting for its first step."""
    return SagaState(
        command.saga_id,
        RUNNING,
        command.input or {},
        pending=_command(command.saga_id, "run", steps[0]),
        correlation_id=correlation_id,
        updated_at=now,
    )


def _compensate_next(state: SagaState, steps: tuple[StepSpec, ...], now: float) -> SagaState:
    by_name = {step.name: step for step in steps}
    for name in reversed((*state.completed, *state.timed_out)):
        step = by_name[name]
        if step.compensation is not None and name not in state.compensated:
            return replace(
                state, status=COMPENSATING, pending=_command(state.saga_id, "compensate", step), updated_at=now
            )
    return replace(state, status=COMPENSATED, pending=None, updated_at=now)


def advance(
    state: SagaState, steps: tuple[StepSpec, ...], outcome: Outcome, now: float, max_compensation_attempts: int
) -> SagaState:
    """The state once the pending command's handler has ended with `outcome`."""
    pending = state.pending
    if pending is None:
        raise ValueError(f"saga {state.saga_id} waits for nothing")
    names = [step.name for step in steps]
    if pending.action == "run":
        if isinstance(outcome, Failed):
            failed = replace(state, error=f"{pending.step}: {outcome.error}")
            if outcome.timed_out:
                failed = replace(failed, timed_out=(*state.timed_out, pending.step))
            return _compensate_next(failed, steps, now)
        done = replace(
            state,
            completed=(*state.completed, pending.step),
            results=state.results | {pending.step: outcome.result},
        )
        index = names.index(pending.step) + 1
        if index == len(steps):
            return replace(done, status=COMPLETED, pending=None, updated_at=now)
        return replace(done, pending=_command(state.saga_id, "run", steps[index]), updated_at=now)
    if isinstance(outcome, Failed):
        if pending.attempt >= max_compensation_attempts:
            message = f"compensating {pending.step} failed {pending.attempt} times: {outcome.error}"
            return replace(state, status=FAILED, pending=None, error=message, updated_at=now)
        step = steps[names.index(pending.step)]
        return replace(state, pending=_command(state.saga_id, "compensate", step, pending.attempt + 1), updated_at=now)
    return _compensate_next(replace(state, compensated=(*state.compensated, pending.step)), steps, now)
