"""ccxt's errors in the engine's terms: the one place that decides what a ccxt failure means.

The table is ordered from the most specific ccxt class to the most general; the first class the
error is an instance of decides. Nothing outside this module looks at a ccxt exception.

Creating an order is special: a failure of the venue while it handled the request (a timeout, a
server error, an unreadable answer) may still have placed the order, so for a create those
become ``UnknownOutcome``, and the order is looked up by its client order id. A rate limit or a
refused nonce means the venue turned the request away before acting on it. An error ccxt does
not classify (its bare ``ExchangeError``) is an ``UnexplainedRefusal``: the handler looks the
order up before it rejects it.
"""

import asyncio
import re

import ccxt

from ordo.execution.errors import (
    AuthenticationFailed,
    BadVenueResponse,
    DuplicateOrder,
    InsufficientFunds,
    InvalidOrder,
    OrderNotFound,
    OrderRejected,
    RateLimited,
    TransientVenueError,
    UnexplainedRefusal,
    UnknownOutcome,
    VenueError,
    VenueTimeout,
    VenueUnavailable,
)

_TRANSLATIONS: tuple[tuple[type[BaseException], type[VenueError]], ...] = (
    # The venue could not answer: counts towards the breaker, reads are retried.
    (ccxt.RequestTimeout, VenueTimeout),
    (ccxt.RateLimitExceeded, RateLimited),
    (ccxt.DDoSProtection, RateLimited),
    (ccxt.InvalidNonce, VenueUnavailable),  # our clock and the venue's disagree: retry later
    (ccxt.ExchangeNotAvailable, VenueUnavailable),  # down, in maintenance, 5xx, unreachable
    (ccxt.NetworkError, VenueUnavailable),
    (ccxt.BadResponse, BadVenueResponse),
    (ccxt.CancelPending, VenueUnavailable),
    (ccxt.OperationFailed, VenueUnavailable),
    (ccxt.ExchangeClosedByUser, VenueUnavailable),
    (ccxt.InvalidProxySettings, VenueUnavailable),
    (ccxt.UnsubscribeError, VenueUnavailable),
    # Our credentials, or what the account may do: halts new orders on the venue.
    (ccxt.AuthenticationError, AuthenticationFailed),  # PermissionDenied, AccountSuspended too
    (ccxt.RestrictedLocation, AuthenticationFailed),
    # The venue answered and said no: a REJECTED report, the breaker does not count it.
    (ccxt.InsufficientFunds, InsufficientFunds),
    (ccxt.OrderNotFound, OrderNotFound),
    (ccxt.OrderNotCached, OrderNotFound),
    (ccxt.DuplicateOrderId, DuplicateOrder),
    (ccxt.OrderImmediatelyFillable, OrderRejected),  # a post-only order would take
    (ccxt.OrderNotFillable, OrderRejected),  # a FOK order could not fill whole
    (ccxt.InvalidOrder, InvalidOrder),
    (ccxt.BadSymbol, InvalidOrder),
    (ccxt.BadRequest, InvalidOrder),
    (ccxt.ArgumentsRequired, InvalidOrder),
    (ccxt.NotSupported, InvalidOrder),
    (ccxt.InvalidAddress, InvalidOrder),
    (ccxt.OperationRejected, OrderRejected),  # market closed, no change, manual step needed
    (ccxt.ExchangeError, UnexplainedRefusal),  # the venue's own error code, not one ccxt knows
    (ccxt.BaseError, BadVenueResponse),
)

# Failures that turn a request away before the venue acts on it.
_REFUSED_BEFORE_ACTING = (ccxt.RateLimitExceeded, ccxt.DDoSProtection, ccxt.InvalidNonce)


def translate(error: BaseException, venue: str, *, creating: bool = False) -> VenueError:
    """The engine's error for ``error`` raised by a ccxt call to ``venue``.

    ``creating``: the call was an order creation, so a failure that may have placed the order
    is an ``UnknownOutcome``. Errors that are not ccxt's (our own deadline, a malformed field in
    an answer) are translated too; anything else is a bug and is not caught here.
    """
    message = _without_queries(str(error) or type(error).__name__)
    translated = _engine_error(error)(message, venue=venue)
    if creating and _may_have_acted(error, translated):
        return UnknownOutcome(f"creating the order: {message}", venue=venue)
    return translated


# A URL's query: ccxt names the URL in its network errors, and some exchanges sign a request in
# its query, with the API key (HTX's AccessKeyId): the message goes into logs and reports.
_URL_QUERY = re.compile(r"(https?://[^\s?#]+)[?#]\S*")


def _without_queries(message: str) -> str:
    return _URL_QUERY.sub(r"\1?(query left out)", message)


def _engine_error(error: BaseException) -> type[VenueError]:
    if isinstance(error, asyncio.TimeoutError):
        return VenueTimeout
    if isinstance(error, KeyError | TypeError | ValueError | ArithmeticError):
        return BadVenueResponse  # an answer without a field we need, or a number that is none
    for ccxt_error, engine_error in _TRANSLATIONS:
        if isinstance(error, ccxt_error):
            return engine_error
    raise TypeError(f"not a venue error: {error!r}") from error


def _may_have_acted(error: BaseException, translated: VenueError) -> bool:
    """Whether a failed create may still have placed the order (and is not marked so yet)."""
    return (
        isinstance(translated, TransientVenueError)
        and not isinstance(translated, UnknownOutcome)
        and not isinstance(error, _REFUSED_BEFORE_ACTING)
    )


TRANSLATED_ERRORS: tuple[type[BaseException], ...] = (
    ccxt.BaseError,
    asyncio.TimeoutError,
    KeyError,
    TypeError,
    ValueError,
    ArithmeticError,
)
"""What an adapter catches around a ccxt call and hands to :func:`translate`."""
