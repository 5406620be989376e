import pytest
from hypothesis import given
from hypothesis import strategies as st

from ordo.contracts.enums import TradingState
from ordo.risk.domain.state import (
    InvalidStateChange,
    StateChange,
    StateUnchanged,
    TradingStateError,
    change_state,
    is_stricter,
    tighten,
)

ACTIVE, REDUCING, HALTED = TradingState.ACTIVE, TradingState.REDUCING, TradingState.HALTED
states = st.sampled_from(TradingState)


def test_an_operator_halts_an_active_account() -> None:
    change = change_state(ACTIVE, HALTED, "venue outage", "alice")

    assert change == StateChange(
        state=HALTED, previous=ACTIVE, reason="venue outage", actor="alice"
    )
    assert change.tightens


def test_an_operator_resumes_a_halted_account() -> None:
    change = change_state(HALTED, ACTIVE, "mismatch resolved", "alice")

    assert change.state is ACTIVE
    assert not change.tightens


@pytest.mark.parametrize("state", list(TradingState))
def test_asking_for_the_current_state_is_refused(state: TradingState) -> None:
    with pytest.raises(StateUnchanged, match=f"already {state}"):
        change_state(state, state, "again", "alice")


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_change_without_a_reason_is_refused(reason: str) -> None:
    with pytest.raises(InvalidStateChange, match="needs a reason"):
        change_state(ACTIVE, HALTED, reason, "alice")


def test_a_change_without_an_actor_is_refused() -> None:
    with pytest.raises(InvalidStateChange, match="needs the actor"):
        change_state(ACTIVE, HALTED, "why", " ")


def test_reason_and_actor_are_kept_without_surrounding_spaces() -> None:
    change = change_state(ACTIVE, REDUCING, "  daily loss close  ", " risk ")

    assert (change.reason, change.actor) == ("daily loss close", "risk")


def test_state_errors_are_value_errors_for_callers_that_catch_broadly() -> None:
    assert issubclass(StateUnchanged, TradingStateError)
    assert issubclass(InvalidStateChange, ValueError)


def test_an_automatic_breach_halts_a_reducing_account() -> None:
    change = tighten(REDUCING, HALTED, "drawdown limit breached", "risk")

    assert change == StateChange(
        state=HALTED, previous=REDUCING, reason="drawdown limit breached", actor="risk"
    )


def test_an_automatic_switch_never_lifts_a_halt() -> None:
    assert tighten(HALTED, REDUCING, "daily loss", "risk") is None


def test_a_second_breach_while_halted_changes_nothing() -> None:
    assert tighten(HALTED, HALTED, "critical mismatch", "reconciler") is None


def test_an_automatic_switch_needs_a_reason_even_when_it_changes_nothing() -> None:
    with pytest.raises(InvalidStateChange):
        tighten(HALTED, HALTED, "", "reconciler")


@pytest.mark.parametrize(
    ("state", "than", "stricter"),
    [
        (REDUCING, ACTIVE, True),
        (HALTED, REDUCING, True),
        (HALTED, ACTIVE, True),
        (ACTIVE, REDUCING, False),
        (HALTED, HALTED, False),
    ],
)
def test_strictness_orders_active_reducing_halted(
    state: TradingState, than: TradingState, stricter: bool
) -> None:
    assert is_stricter(state, than=than) is stricter


@given(current=states, requested=states)
def test_an_operator_can_move_between_any_two_different_states(
    current: TradingState, requested: TradingState
) -> None:
    if current is requested:
        with pytest.raises(StateUnchanged):
            change_state(current, requested, "reason", "op")
    else:
        change = change_state(current, requested, "reason", "op")
        assert (change.previous, change.state) == (current, requested)


@given(start=states, requests=st.lists(states, max_size=10))
def test_automatic_switches_only_ever_tighten(
    start: TradingState, requests: list[TradingState]
) -> None:
    state = start
    for requested in requests:
        change = tighten(state, requested, "breach", "risk")
        if change is not None:
            assert change.previous is state
            assert is_stricter(change.state, than=state)
            state = change.state
        assert not is_stricter(start, than=state)
