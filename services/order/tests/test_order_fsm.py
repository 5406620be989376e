"""The order state machine: one table, and everything outside it raises."""

from collections import deque

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ordo.contracts.enums import OrderStatus
from ordo.order.domain import TRANSITIONS, InvalidTransition, can_transition, transition

S = OrderStatus
statuses = st.sampled_from(list(OrderStatus))


def test_the_table_names_every_status() -> None:
    assert set(TRANSITIONS) == set(OrderStatus)


def test_the_documented_happy_paths_are_allowed() -> None:
    paths = [
        [S.INITIALIZED, S.DENIED],
        [S.INITIALIZED, S.SUBMITTED, S.REJECTED],
        [S.INITIALIZED, S.SUBMITTED, S.ACCEPTED, S.PARTIALLY_FILLED, S.FILLED],
        [S.INITIALIZED, S.SUBMITTED, S.ACCEPTED, S.PENDING_CANCEL, S.CANCELED],
        [S.INITIALIZED, S.SUBMITTED, S.ACCEPTED, S.PARTIALLY_FILLED, S.PENDING_CANCEL, S.CANCELED],
        [S.INITIALIZED, S.SUBMITTED, S.ACCEPTED, S.EXPIRED],
        [S.INITIALIZED, S.SUBMITTED, S.ACCEPTED, S.TRIGGERED, S.FILLED],
        [S.INITIALIZED, S.SUBMITTED, S.ACCEPTED, S.PENDING_UPDATE, S.ACCEPTED],
        [S.INITIALIZED, S.CANCELED],  # an emulated order, canceled while the OMS held it
        [S.INITIALIZED, S.EXPIRED],  # ... or expired before its trigger
    ]
    for path in paths:
        current = path[0]
        for target in path[1:]:
            current = transition(current, target)
        assert current is path[-1]


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.SUBMITTED, S.FILLED),  # a market order filled before its acceptance report
        (S.INITIALIZED, S.ACCEPTED),  # the venue's report overtook the risk approval
        (S.PENDING_CANCEL, S.FILLED),  # the fill raced the cancel
        (S.CANCELED, S.FILLED),  # ... and was reported after it
        (S.EXPIRED, S.FILLED),
        (S.SUBMITTED, S.EXPIRED),  # an unfilled IOC, as some venues report it
    ],
)
def test_real_world_possibilities_are_allowed(current: OrderStatus, target: OrderStatus) -> None:
    assert can_transition(current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.FILLED, S.CANCELED),
        (S.FILLED, S.PARTIALLY_FILLED),
        (S.DENIED, S.SUBMITTED),
        (S.REJECTED, S.ACCEPTED),
        (S.CANCELED, S.PARTIALLY_FILLED),  # a finished order does not start working again
        (S.PENDING_CANCEL, S.ACCEPTED),  # a stale "working" report is no answer to a cancel
        (S.PARTIALLY_FILLED, S.ACCEPTED),
        (S.ACCEPTED, S.SUBMITTED),
        (S.INITIALIZED, S.PENDING_CANCEL),
    ],
)
def test_impossible_transitions_raise(current: OrderStatus, target: OrderStatus) -> None:
    with pytest.raises(InvalidTransition) as raised:
        transition(current, target)
    assert (raised.value.current, raised.value.target) == (current, target)
    assert current.value in str(raised.value)
    assert target.value in str(raised.value)


def test_finished_orders_only_leave_for_a_fill_that_raced_their_end() -> None:
    for status in OrderStatus:
        if status.is_terminal:
            assert TRANSITIONS[status] <= {S.FILLED}, status


def test_only_the_risk_gate_denies_and_only_before_submission() -> None:
    denying = {status for status, targets in TRANSITIONS.items() if S.DENIED in targets}
    assert denying == {S.INITIALIZED}


def test_every_status_is_reachable_from_initialized() -> None:
    seen = {S.INITIALIZED}
    queue = deque([S.INITIALIZED])
    while queue:
        for target in TRANSITIONS[queue.popleft()] - seen:
            seen.add(target)
            queue.append(target)
    assert seen == set(OrderStatus)


def test_there_are_no_self_loops() -> None:
    assert all(status not in targets for status, targets in TRANSITIONS.items())


@given(statuses, statuses)
def test_transition_agrees_with_can_transition(current: OrderStatus, target: OrderStatus) -> None:
    if can_transition(current, target):
        assert transition(current, target) is target
    else:
        with pytest.raises(InvalidTransition):
            transition(current, target)
