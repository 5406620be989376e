"""The venue errors the execution engine understands.

Every adapter raises these and nothing else: a ccxt error is translated once, at the adapter
boundary, so the engine never imports ccxt to decide what a failure means. Three families:

- ``TransientVenueError``: the venue could not answer. Counts towards the circuit breaker; a read
  may be retried. A create is never retried blindly: when it failed in a way that may have
  placed the order (``UnknownOutcome``: a timeout, a server error, an unreadable answer) its
  outcome is resolved by looking the order up by its client order id.
- ``BusinessVenueError``: the venue answered and said no. Does not count towards the breaker; the
  order becomes a REJECTED execution report.
- ``AuthenticationFailed``: the credentials are wrong or revoked. Counts towards the breaker (so
  the venue is left alone for a while) and halts new orders on the venue for the account until
  the credentials work again; a create becomes a REJECTED report, a cancel goes to the
  dead-letter stream at once, to be replayed once the credentials are fixed.
"""

from typing import ClassVar


class VenueError(Exception):
    """Base of every error a venue adapter raises."""

    default_message: ClassVar[str] = "the venue reported an error"

    def __init__(self, message: str | None = None, *, venue: str | None = None) -> None:
        self.detail = message or self.default_message
        self.venue = venue
        super().__init__(f"{venue}: {self.detail}" if venue else self.detail)


class TransientVenueError(VenueError):
    """The venue could not answer; the same request may succeed later."""

    default_message = "the venue did not answer"


class VenueUnavailable(TransientVenueError):
    default_message = "the venue is unavailable (down, in maintenance or unreachable)"


class UnknownOutcome(TransientVenueError):
    """The venue failed while handling a request that changes state: it may have taken effect."""

    default_message = "the venue failed while taking the request; whether it took effect is unknown"


class VenueTimeout(UnknownOutcome):
    default_message = "the venue did not answer in time; whether the request took effect is unknown"


class RateLimited(TransientVenueError):
    default_message = "the venue refused the request because its rate limit was exceeded"


class BadVenueResponse(TransientVenueError):
    default_message = "the venue sent a response that could not be understood"


class BusinessVenueError(VenueError):
    """The venue understood the request and refused it; retrying will not help."""

    default_message = "the venue refused the request"


class InsufficientFunds(BusinessVenueError):
    default_message = "the account does not hold enough funds for this order"


class InvalidOrder(BusinessVenueError):
    default_message = "the order breaks the venue's rules (symbol, precision or minimum size)"


class OrderRejected(BusinessVenueError):
    default_message = "the venue rejected the order"


class UnexplainedRefusal(OrderRejected):
    """The venue answered with an error no translation explains (ccxt's bare ``ExchangeError``,
    for an error code ccxt does not know): most likely a refusal, but not provably one, so a
    create that meets it is only rejected once a lookup shows the venue does not hold the order."""

    default_message = "the venue answered with an error it did not explain"


class OrderNotFound(BusinessVenueError):
    default_message = "the venue does not know this order"


class DuplicateOrder(BusinessVenueError):
    """The venue already holds an order under this client order id: look it up, never resend."""

    default_message = "the venue already holds an order with this client order id"


class UnknownVenue(BusinessVenueError):
    """No adapter is registered under the venue name an order or query asked for."""

    default_message = "no adapter is registered for this venue"


class AuthenticationFailed(VenueError):
    """Credentials were refused: counted towards the breaker, and new orders to the venue account
    are halted until a probe finds the credentials working again."""

    default_message = "the venue refused the credentials (wrong, expired or lacking permission)"
