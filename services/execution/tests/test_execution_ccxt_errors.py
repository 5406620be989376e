"""Every ccxt error becomes the right engine error, once, at the adapter boundary."""

import inspect

import ccxt
import pytest
from ccxt.base import errors as ccxt_errors

from ordo.execution.errors import (
    AuthenticationFailed,
    BadVenueResponse,
    DuplicateOrder,
    InsufficientFunds,
    InvalidOrder,
    OrderNotFound,
    OrderRejected,
    RateLimited,
    UnexplainedRefusal,
    UnknownOutcome,
    VenueError,
    VenueTimeout,
    VenueUnavailable,
)
from ordo.execution.venues.ccxt_errors import translate

EXPECTED: dict[type[Exception], type[VenueError]] = {
    ccxt.BaseError: BadVenueResponse,
    ccxt.ExchangeError: UnexplainedRefusal,
    ccxt.ArgumentsRequired: InvalidOrder,
    ccxt.AuthenticationError: AuthenticationFailed,
    ccxt.AccountSuspended: AuthenticationFailed,
    ccxt.PermissionDenied: AuthenticationFailed,
    ccxt.AccountNotEnabled: AuthenticationFailed,
    ccxt.BadRequest: InvalidOrder,
    ccxt.BadSymbol: InvalidOrder,
    ccxt.ExchangeClosedByUser: VenueUnavailable,
    ccxt.InsufficientFunds: InsufficientFunds,
    ccxt.InvalidAddress: InvalidOrder,
    ccxt.AddressPending: InvalidOrder,
    ccxt.InvalidOrder: InvalidOrder,
    ccxt.ContractUnavailable: InvalidOrder,
    ccxt.DuplicateOrderId: DuplicateOrder,
    ccxt.OrderImmediatelyFillable: OrderRejected,
    ccxt.OrderNotCached: OrderNotFound,
    ccxt.OrderNotFillable: OrderRejected,
    ccxt.OrderNotFound: OrderNotFound,
    ccxt.InvalidProxySettings: VenueUnavailable,
    ccxt.NotSupported: InvalidOrder,
    ccxt.OperationRejected: OrderRejected,
    ccxt.ManualInteractionNeeded: OrderRejected,
    ccxt.MarketClosed: OrderRejected,
    ccxt.NoChange: OrderRejected,
    ccxt.MarginModeAlreadySet: OrderRejected,
    ccxt.RestrictedLocation: AuthenticationFailed,
    ccxt.OperationFailed: VenueUnavailable,
    ccxt.BadResponse: BadVenueResponse,
    ccxt.NullResponse: BadVenueResponse,
    ccxt.CancelPending: VenueUnavailable,
    ccxt.NetworkError: VenueUnavailable,
    ccxt.DDoSProtection: RateLimited,
    ccxt.ExchangeNotAvailable: VenueUnavailable,
    ccxt.OnMaintenance: VenueUnavailable,
    ccxt.InvalidNonce: VenueUnavailable,
    ccxt.ChecksumError: VenueUnavailable,
    ccxt.RateLimitExceeded: RateLimited,
    ccxt.RequestTimeout: VenueTimeout,
    ccxt.UnsubscribeError: VenueUnavailable,
}


def test_the_table_covers_every_error_ccxt_defines() -> None:
    defined = {
        cls
        for _, cls in inspect.getmembers(ccxt_errors, inspect.isclass)
        if issubclass(cls, ccxt.BaseError)
    }

    assert defined == set(EXPECTED)


@pytest.mark.parametrize("error", list(EXPECTED), ids=lambda error: error.__name__)
def test_each_ccxt_error_becomes_its_engine_error(error: type[Exception]) -> None:
    translated = translate(error('binance {"code":-1,"msg":"no"}'), "ccxt:binance")

    assert type(translated) is EXPECTED[error]
    assert translated.venue == "ccxt:binance"
    assert "no" in translated.detail


@pytest.mark.parametrize(
    "error", [ccxt.ExchangeNotAvailable, ccxt.NetworkError, ccxt.BadResponse, ccxt.OperationFailed]
)
def test_a_create_the_venue_failed_while_handling_has_an_unknown_outcome(
    error: type[Exception],
) -> None:
    assert isinstance(translate(error("502"), "ccxt:binance", creating=True), UnknownOutcome)


@pytest.mark.parametrize("error", [ccxt.RateLimitExceeded, ccxt.DDoSProtection, ccxt.InvalidNonce])
def test_a_create_turned_away_before_the_venue_acted_is_not_unknown(error: type[Exception]) -> None:
    translated = translate(error("429"), "ccxt:binance", creating=True)

    assert not isinstance(translated, UnknownOutcome)


def test_a_create_that_timed_out_is_an_unknown_outcome_and_still_a_timeout() -> None:
    translated = translate(ccxt.RequestTimeout("slow"), "ccxt:binance", creating=True)

    assert isinstance(translated, VenueTimeout)


def test_a_business_refusal_of_a_create_stays_a_refusal() -> None:
    translated = translate(ccxt.InsufficientFunds("no money"), "ccxt:binance", creating=True)

    assert isinstance(translated, InsufficientFunds)


def test_our_own_deadline_and_a_malformed_answer_are_translated_too() -> None:
    assert isinstance(translate(TimeoutError(), "ccxt:binance"), VenueTimeout)
    assert isinstance(translate(KeyError("price"), "ccxt:binance"), BadVenueResponse)


def test_an_error_that_is_not_the_venues_is_not_hidden() -> None:
    with pytest.raises(TypeError, match="not a venue error"):
        translate(RuntimeError("a bug"), "ccxt:binance")


def test_a_signed_url_in_a_ccxt_error_leaves_its_query_behind() -> None:
    # ccxt names the URL in its network errors; some exchanges (HTX) sign with the API key in
    # the query. The message goes into logs, and into a report's reason.
    url = "https://api.huobi.pro/v1/order/orders?AccessKeyId=my-api-key&Signature=c2ln"
    error = ccxt.RequestTimeout(f"htx POST {url}")
    error.__cause__ = OSError(f"Cannot connect to {url}")

    translated = translate(error, "ccxt:htx", creating=True)

    assert isinstance(translated, VenueTimeout)
    assert "my-api-key" not in str(translated) and "c2ln" not in str(translated)
    assert "POST https://api.huobi.pro/v1/order/orders" in translated.detail
