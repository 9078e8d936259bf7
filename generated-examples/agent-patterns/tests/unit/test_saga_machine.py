"""How a saga's state moves on each outcome, without Kafka: the order of steps and compensations, repeats, and a
compensation that keeps failing."""

from dataclasses import replace

import pytest

from agent_ops.patterns.saga.machine import (
    COMPENSATED,
    COMPLETED,
    FAILED,
    Command,
    Failed,
    SagaState,
    StepSpec,
    Succeeded,
    advance,
    begin,
    taken,
)

PLAN = (StepSpec("reserve", "release", 30), StepSpec("act", None, 5), StepSpec("store", "delete", 10))


def run(state: SagaState, *outcomes: Succeeded | Failed, now: float = 100.0) -> SagaState:
    for outcome in outcomes:
        state = advance(state, PLAN, outcome, now, max_compensation_attempts=2)
    return state


def started() -> SagaState:
    return begin(Command("s-1", "start", input={"n": 1}), PLAN, now=100.0, correlation_id="c-1")


def test_a_started_saga_waits_for_its_first_step_within_its_timeout() -> None:
    state = started()
    assert state.status == "running"
    assert state.pending is not None
    assert (state.pending.action, state.pending.step, state.pending.deadline) == ("run", "reserve", None)
    assert state.input == {"n": 1}
    assert state.correlation_id == "c-1"


def test_every_step_succeeding_completes_the_saga_with_each_result() -> None:
    state = run(started(), Succeeded({"r": 1}), Succeeded(None), Succeeded({"s": 2}))
    assert state.status == COMPLETED
    assert state.pending is None
    assert state.completed == ("reserve", "act", "store")
    assert state.results == {"reserve": {"r": 1}, "act": None, "store": {"s": 2}}


def test_a_failed_step_compensates_the_completed_steps_in_reverse_skipping_those_without_one() -> None:
    state = run(started(), Succeeded(), Succeeded(), Failed("boom"))
    assert state.status == "compensating"
    assert state.error == "store: boom"
    assert state.pending is not None
    assert (state.pending.action, state.pending.step) == ("compensate", "reserve"), "act has nothing to undo"
    state = run(state, Succeeded())
    assert state.status == COMPENSATED
    assert state.compensated == ("reserve",)
    assert state.pending is None


def test_a_failed_first_step_leaves_nothing_to_compensate() -> None:
    state = run(started(), Failed("no credits"))
    assert (state.status, state.completed, state.pending) == (COMPENSATED, (), None)


def test_only_the_pending_command_is_expected_so_a_repeat_changes_nothing() -> None:
    state = started()
    assert state.pending is not None
    repeat = Command("s-1", "run", "reserve", 1, command_id="another id")
    assert state.expects(repeat), "the same step and attempt, whoever sent it"
    moved = run(state, Succeeded())
    assert not moved.expects(repeat), "once reserve completed, its command again is a repeat"
    assert not moved.expects(Command("s-1", "start"))


def test_a_compensation_that_keeps_failing_is_retried_then_the_saga_fails() -> None:
    state = run(started(), Succeeded(), Failed("boom"), Failed("down"))
    assert state.pending is not None
    assert (state.pending.action, state.pending.attempt) == ("compensate", 2)
    state = run(state, Failed("still down"))
    assert state.status == FAILED
    assert state.error == "compensating reserve failed 2 times: still down"


def test_state_and_commands_survive_their_encoding() -> None:
    state = run(started(), Succeeded({"r": 1}))
    assert SagaState.from_bytes(state.to_bytes()) == state
    assert state.pending is not None
    assert Command.from_bytes(state.pending.to_bytes()) == state.pending


def test_a_step_that_timed_out_is_compensated_first_as_its_effect_may_exist() -> None:
    state = run(started(), Succeeded(), Succeeded(), Failed("store timed out after 10 s", timed_out=True))
    assert state.timed_out == ("store",)
    assert state.pending is not None
    assert (state.pending.action, state.pending.step) == ("compensate", "store"), "the cut-short step first"
    state = run(state, Succeeded())
    assert state.pending is not None
    assert (state.pending.action, state.pending.step) == ("compensate", "reserve")
    state = run(state, Succeeded())
    assert state.status == COMPENSATED
    assert state.compensated == ("store", "reserve")
    assert SagaState.from_bytes(state.to_bytes()) == state


def test_a_command_gets_its_steps_time_when_taken_and_keeps_it() -> None:
    state = run(started(), Succeeded(), now=100.0)
    assert state.pending is not None
    assert state.pending.deadline is None, "issued, not taken: waiting in a backlog costs the step nothing"
    first = taken(state, PLAN, now=160.0)
    assert first.pending is not None
    assert first.pending.deadline == 165.0, "act's 5 s from when it was taken"
    assert first.pending.same_as(state.pending), "the same command"
    again = taken(first, PLAN, now=300.0)
    assert again == first, "taken again after a restart mid-step: only what was left"
    assert taken(replace(first, pending=None), PLAN, now=300.0).pending is None


def test_a_compensation_tried_again_gets_its_back_off_before_its_time() -> None:
    state = run(started(), Succeeded(), Succeeded(), Failed("boom"), Failed("undo failed"))
    assert state.pending is not None
    assert (state.pending.action, state.pending.attempt) == ("compensate", 2)
    retry = taken(state, PLAN, now=200.0, backoff_seconds=4.0)
    assert retry.pending is not None
    assert retry.pending.deadline == 234.0, "4 s of back-off, then release's 30 s"


@pytest.mark.parametrize(
    "value",
    [
        None,
        b"",
        b"\x00\x00\x00\x00\x07garbage",
        b"\xff\xfe",
        b"[]",
        b'{"action": "run"',
        b'{"action": "run", "saga_id": "s-1", "unknown": 1}',
        b'{"action": "run", "saga_id": 7}',
        b'{"action": "run", "saga_id": "s-1", "input": "not a mapping"}',
    ],
)
def test_anything_but_a_command_is_refused_with_a_value_error(value: bytes | None) -> None:
    with pytest.raises(ValueError, match="not a saga command"):
        Command.from_bytes(value)
