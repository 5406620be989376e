"""Stored bodies never hold the secret, however the alert spelled it."""

import json

from hypothesis import given
from hypothesis import strategies as st

from ordo.signal.domain.redaction import REDACTED, bounded, redact

secrets = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=40
)


@given(secret=secrets)
def test_a_json_secret_is_never_stored(secret: str) -> None:
    body = json.dumps({"ticker": "BTCUSDT", "secret": secret, "action": "buy"})

    stored = redact(body)

    assert json.loads(stored)["secret"] == REDACTED
    assert json.loads(stored)["ticker"] == "BTCUSDT"


@given(secret=secrets.filter(lambda s: "\n" not in s and "\r" not in s and s.strip() == s))
def test_a_key_value_secret_is_never_stored(secret: str) -> None:
    body = f"ticker=BTCUSDT\nsecret={secret}\naction=buy, contracts=1"

    stored = redact(body)

    assert f"secret={REDACTED}" in stored
    assert "ticker=BTCUSDT" in stored
    assert "action=buy, contracts=1" in stored


def test_a_secret_with_a_comma_is_cut_where_the_parser_cuts_it() -> None:
    # As parse_alert reads it: a comma ends the secret only when "key=" follows.
    stored = redact("secret=a,b c, action=buy, contracts=1")

    assert stored == f"secret={REDACTED}, action=buy, contracts=1"


def test_known_secrets_are_removed_wherever_they_appear() -> None:
    stored = redact("comment=the password is hunter22", ["hunter22"])

    assert "hunter22" not in stored


def test_a_long_body_is_cut_and_says_so() -> None:
    stored = bounded("x" * 1000, 100)

    assert len(stored) <= 100
    assert stored.endswith("more characters]")
    assert bounded("short", 100) == "short"
