"""Why a signal is refused: one exception family, each naming the field at fault and the reason."""


class SignalError(ValueError):
    """A signal that cannot be accepted. ``field`` names the culprit, ``reason`` says why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class AlertError(SignalError):
    """A TradingView alert body that cannot be read or whose fields are invalid."""


class UnmappableIntent(SignalError):
    """An action and market positions that no trading intent explains."""


class UnknownSymbol(SignalError):
    """A ticker that is not (or not unambiguously) in the venue's market list."""

    def __init__(self, symbol: str, reason: str, field: str = "symbol") -> None:
        super().__init__(field, reason)
        self.symbol = symbol


class UnknownVenue(SignalError):
    """A venue that the service has no market list for."""


class KeyReused(SignalError):
    """A dedupe key that already names a different signal within the dedupe window.

    A true repeat (a retry) carries the same signal and is answered as a duplicate; a different
    signal under the same key is refused, never dropped silently as if it were a repeat.
    """
