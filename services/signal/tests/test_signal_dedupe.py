"""Dedupe keys for retried alerts, and the checks on the sender's secret and signature."""

import hashlib
import hmac
import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ordo.signal.domain.dedupe import dedupe_key, hmac_signature_valid, secret_matches
from ordo.signal.domain.tradingview import parse_alert

BASE_FIELDS: dict[str, object] = {
    "secret": "s3cret",
    "ticker": "BTCUSDT",
    "action": "buy",
    "contracts": "0.5",
    "market_position": "long",
    "prev_market_position": "flat",
    "close": "42000",
    "account": "main",
    "strategy": "trend",
}


def key_of(**changes: object) -> str:
    fields = {**BASE_FIELDS, **changes}
    body = json.dumps({k: v for k, v in fields.items() if v is not None}).encode()
    return dedupe_key(parse_alert(body, "application/json"))


def test_alert_id_is_the_key_whatever_else_changes() -> None:
    assert key_of(alert_id="a-1", close="1") == key_of(alert_id="a-1", close="2")
    assert key_of(alert_id="a-1").startswith("tv-alert-")


def test_same_alert_id_in_another_strategy_is_another_alert() -> None:
    assert key_of(alert_id="a-1") != key_of(alert_id="a-1", strategy="other")


def test_order_id_and_time_identify_an_alert() -> None:
    at = "2024-01-15T10:30:00Z"

    assert key_of(order_id="Long", timenow=at, close="1") == key_of(
        order_id="Long", timenow=at, close="2"
    )
    assert key_of(order_id="Long", timenow=at).startswith("tv-order-")


def test_same_order_id_at_the_same_time_on_another_ticker_is_another_alert() -> None:
    at = "2024-01-15T10:30:00Z"

    assert key_of(order_id="Long", timenow=at) != key_of(
        order_id="Long", timenow=at, ticker="ETHUSDT"
    )


def test_order_id_without_time_falls_back_to_content() -> None:
    assert key_of(order_id="Long").startswith("tv-content-")


def test_content_key_ignores_the_secret() -> None:
    assert key_of(secret="old") == key_of(secret="new")


def test_content_key_changes_with_content() -> None:
    assert key_of(close="42000") != key_of(close="42001")


def test_same_time_in_another_offset_is_the_same_alert() -> None:
    assert key_of(timenow="2024-01-15T10:30:00Z") == key_of(timenow="2024-01-15T11:30:00+01:00")


def test_default_size_unit_spelled_out_is_the_same_alert() -> None:
    assert key_of() == key_of(size_unit="quantity")


def test_plain_text_and_json_of_the_same_alert_share_a_key() -> None:
    text = "\n".join(f"{k}={v}" for k, v in BASE_FIELDS.items()).encode()

    assert dedupe_key(parse_alert(text, "text/plain")) == key_of()


NUMBER_SPELLINGS = st.sampled_from(["{}", "{}.0", "{}.000", "{}e0"])
PRICES = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(10**6), places=2)


@given(
    order=st.permutations(list(BASE_FIELDS)),
    contracts=st.integers(min_value=1, max_value=10**6),
    spelling=NUMBER_SPELLINGS,
    close=PRICES,
    quote_numbers=st.booleans(),
)
def test_dedupe_key_is_stable_under_key_order_and_number_formatting(
    order: list[str], contracts: int, spelling: str, close: Decimal, quote_numbers: bool
) -> None:
    canonical = {**BASE_FIELDS, "contracts": str(contracts), "close": str(close)}
    contracts_text = spelling.format(contracts)
    close_text = f"{close}00"  # trailing zeros do not change the price
    rendered = (
        f'"{contracts_text}"' if quote_numbers else contracts_text,
        f'"{close_text}"' if quote_numbers else close_text,
    )
    members = []
    for name in order:
        if name == "contracts":
            members.append(f'"contracts": {rendered[0]}')
        elif name == "close":
            members.append(f'"close": {rendered[1]}')
        else:
            members.append(f"{json.dumps(name)}: {json.dumps(canonical[name])}")
    shuffled = ("{" + ", ".join(members) + "}").encode()

    reference = dedupe_key(parse_alert(json.dumps(canonical).encode(), "application/json"))

    assert dedupe_key(parse_alert(shuffled, "text/plain")) == reference


def test_secret_matches_only_the_expected_secret() -> None:
    assert secret_matches("s3cret", "s3cret")
    assert not secret_matches("s3cre", "s3cret")
    assert not secret_matches(None, "s3cret")
    assert secret_matches("pässwörd", "pässwörd")


def test_an_empty_expected_secret_never_matches() -> None:
    assert not secret_matches("", "")


def signature(body: bytes, key: str) -> str:
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def test_hmac_signature_with_or_without_prefix_is_valid() -> None:
    body = b'{"ticker": "BTCUSDT"}'
    digest = signature(body, "k")

    assert hmac_signature_valid(body, digest, "k")
    assert hmac_signature_valid(body, f"sha256={digest}", "k")
    assert hmac_signature_valid(body, f"SHA256={digest.upper()}", "k")


def test_hmac_signature_of_other_body_or_key_is_invalid() -> None:
    body = b'{"ticker": "BTCUSDT"}'

    assert not hmac_signature_valid(body + b" ", signature(body, "k"), "k")
    assert not hmac_signature_valid(body, signature(body, "other"), "k")
    assert not hmac_signature_valid(body, None, "k")
    assert not hmac_signature_valid(body, "sha256=zz-not-hex-ü", "k")
    assert not hmac_signature_valid(body, signature(body, ""), "")


def test_the_secret_comparison_does_not_reveal_the_secret_length(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # compare_digest returns at once for inputs of different lengths: that would time the length.
    compared: list[tuple[int, int]] = []
    original = hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        compared.append((len(a), len(b)))
        return original(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)

    secret_matches("x", "a-much-longer-secret")
    secret_matches("a-much-longer-guess-than-the-secret", "short-secret")

    assert compared
    assert all(given == expected for given, expected in compared)


def test_a_secret_that_is_not_valid_unicode_does_not_match() -> None:
    assert not secret_matches("\ud800", "s3cret")
