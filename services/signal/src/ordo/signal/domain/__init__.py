"""The signal service's pure domain: reading alerts, mapping intents, symbols and dedupe keys.

No I/O here: the handlers feed bytes and market lists in and publish what comes out.
"""

from ordo.signal.domain.api import (
    SignalApiRequest,
    missing_part,
    normalise_signal,
    parse_api_request,
    venue_markets,
)
from ordo.signal.domain.dedupe import (
    dedupe_key,
    dedupe_key_field,
    fingerprint,
    hmac_signature_valid,
    request_dedupe_key,
    secret_matches,
)
from ordo.signal.domain.errors import (
    AlertError,
    KeyReused,
    SignalError,
    UnknownSymbol,
    UnknownVenue,
    UnmappableIntent,
)
from ordo.signal.domain.intent import MarketPosition, needs_size, to_intent
from ordo.signal.domain.redaction import bounded, redact
from ordo.signal.domain.symbols import normalise_symbol
from ordo.signal.domain.tradingview import (
    MAX_ALERT_BYTES,
    TradingViewAlert,
    alert_from_fields,
    alert_secret,
    alert_venue,
    parse_alert,
    read_alert_fields,
    to_signal_request,
)

__all__ = [
    "MAX_ALERT_BYTES",
    "AlertError",
    "KeyReused",
    "MarketPosition",
    "SignalApiRequest",
    "SignalError",
    "TradingViewAlert",
    "UnknownSymbol",
    "UnknownVenue",
    "UnmappableIntent",
    "alert_from_fields",
    "alert_secret",
    "alert_venue",
    "bounded",
    "dedupe_key",
    "dedupe_key_field",
    "fingerprint",
    "hmac_signature_valid",
    "missing_part",
    "needs_size",
    "normalise_signal",
    "normalise_symbol",
    "parse_alert",
    "parse_api_request",
    "read_alert_fields",
    "redact",
    "request_dedupe_key",
    "secret_matches",
    "to_intent",
    "to_signal_request",
    "venue_markets",
]
