"""An account's trading state: ACTIVE, REDUCING (only orders that reduce exposure), HALTED.

Operators may move an account between any two states. Automatic switches (a loss limit breached,
a critical reconciliation mismatch) only ever tighten it: :func:`tighten` never resumes trading.
"""

from dataclasses import dataclass

from ordo.contracts.enums import TradingState

# How restrictive each state is; an automatic switch only moves up this scale.
_STRICTNESS = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}


class TradingStateError(ValueError):
    """A trading state change that cannot be made."""


class StateUnchanged(TradingStateError):
    """The account is already in the requested state."""


class InvalidStateChange(TradingStateError):
    """The request is incomplete: every change needs a reason and an actor for the audit log."""


@dataclass(frozen=True)
class StateChange:
    """The data of a ``TradingStateChanged`` event."""

    state: TradingState
    previous: TradingState
    reason: str
    actor: str

    @property
    def tightens(self) -> bool:
        return is_stricter(self.state, than=self.previous)


def is_stricter(state: TradingState, *, than: TradingState) -> bool:
    return _STRICTNESS[state] > _STRICTNESS[than]


def change_state(
    current: TradingState, requested: TradingState, reason: str, actor: str
) -> StateChange:
    """Switch the state as an operator asked; raises when there is nothing to change."""
    reason, actor = _audit_fields(requested, reason, actor)
    if requested is current:
        raise StateUnchanged(f"the account is already {current}")
    return StateChange(state=requested, previous=current, reason=reason, actor=actor)


def tighten(
    current: TradingState, requested: TradingState, reason: str, actor: str
) -> StateChange | None:
    """An automatic switch: applied only when it is stricter than the current state.

    Returns None when the account is already at least as restricted (a second breach while halted
    changes nothing; an automatic rule never lifts an operator's halt).
    """
    reason, actor = _audit_fields(requested, reason, actor)
    if not is_stricter(requested, than=current):
        return None
    return StateChange(state=requested, previous=current, reason=reason, actor=actor)


def _audit_fields(requested: TradingState, reason: str, actor: str) -> tuple[str, str]:
    reason, actor = reason.strip(), actor.strip()
    if not reason:
        raise InvalidStateChange(f"a switch to {requested} needs a reason")
    if not actor:
        raise InvalidStateChange(f"a switch to {requested} needs the actor who asked for it")
    return reason, actor
