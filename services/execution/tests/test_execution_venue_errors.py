"""The venue error families decide breaker counting and rejection; messages say what happened."""

import pytest

from ordo.execution.errors import (
    AuthenticationFailed,
    BadVenueResponse,
    BusinessVenueError,
    InsufficientFunds,
    InvalidOrder,
    OrderNotFound,
    OrderRejected,
    RateLimited,
    TransientVenueError,
    VenueError,
    VenueTimeout,
    VenueUnavailable,
)


@pytest.mark.parametrize("error", [VenueUnavailable, VenueTimeout, RateLimited, BadVenueResponse])
def test_failures_to_answer_are_transient(error: type[VenueError]) -> None:
    assert issubclass(error, TransientVenueError)
    assert not issubclass(error, BusinessVenueError)


@pytest.mark.parametrize("error", [InsufficientFunds, InvalidOrder, OrderRejected, OrderNotFound])
def test_refusals_are_business_errors(error: type[VenueError]) -> None:
    assert issubclass(error, BusinessVenueError)
    assert not issubclass(error, TransientVenueError)


def test_refused_credentials_are_neither_transient_nor_business() -> None:
    assert issubclass(AuthenticationFailed, VenueError)
    assert not issubclass(AuthenticationFailed, TransientVenueError | BusinessVenueError)


def test_an_error_names_its_venue_and_says_what_happened() -> None:
    assert str(InsufficientFunds("needs 10 USDT", venue="paper")) == "paper: needs 10 USDT"
    assert "rate limit" in str(RateLimited())
    assert InvalidOrder("step", venue="binance").detail == "step"
