"""POST /v1/webhooks/tradingview: TradingView alerts in, SignalAccepted out (or a refusal)."""

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from signal_support import WEBHOOK_SECRET, SignalHarness, running_signal, template_alert

from ordo.contracts.enums import Intent, SignalSource
from ordo.contracts.signals import SignalAccepted
from ordo.kit.testing import eventually


@pytest.fixture
async def signal(tmp_path: Path) -> AsyncIterator[SignalHarness]:
    async with running_signal(tmp_path) as harness:
        yield harness


async def test_template_alert_is_accepted_and_announced_under_its_signal_id(
    signal: SignalHarness,
) -> None:
    response = await signal.post_alert(template_alert())

    assert response.status_code == 202
    answer = response.json()
    assert answer["duplicate"] is False

    async def marked_sent() -> list[Any] | None:
        rows = await signal.outbox()
        return rows if rows and rows[0]["sent_at"] is not None else None

    # Published right after the commit, and marked sent a moment later (marks are grouped).
    outbox = await eventually(marked_sent, timeout=10, what="the outbox row marked sent")
    assert [row["subject"] for row in outbox] == ["signal.accepted.v1"]
    assert outbox[0]["correlation_id"] == answer["signal_id"]
    accepted = SignalAccepted.from_json(outbox[0]["payload"])
    assert accepted.signal_id == answer["signal_id"]
    assert accepted.correlation_id == answer["signal_id"]
    assert accepted.source is SignalSource.TRADINGVIEW
    assert accepted.signal.symbol == "BTC/USDT"
    assert accepted.signal.venue == "paper"
    assert accepted.signal.intent is Intent.ENTER_LONG
    assert accepted.signal.size is not None
    assert accepted.signal.size.value == Decimal("0.5")


async def test_the_recorded_signal_keeps_the_body_but_not_the_secret(
    signal: SignalHarness,
) -> None:
    response = await signal.post_alert(template_alert())

    [row] = await signal.signals()
    assert row["signal_id"] == response.json()["signal_id"]
    assert row["account"] == "main"
    assert row["symbol"] == "BTC/USDT"
    assert row["intent"] == "enter_long"
    assert row["request"]["size"] == {"unit": "quantity", "value": "0.5"}
    assert "BINANCE:BTCUSDT" in row["raw_body"]
    assert WEBHOOK_SECRET not in row["raw_body"]


async def test_plain_text_alert_is_accepted(signal: SignalHarness) -> None:
    body = (
        f"secret={WEBHOOK_SECRET}\n"
        "ticker=BTCUSDT.P\n"
        "action=sell, contracts=0.25, market_position=short, prev_market_position=flat\n"
        "close=42100\n"
        "account=main\n"
        "strategy=breakout\n"
    )

    response = await signal.http.post(
        "/v1/webhooks/tradingview",
        content=body.encode(),
        headers={"Content-Type": "text/plain; charset=utf-8"},
    )

    assert response.status_code == 202
    [row] = await signal.outbox()
    accepted = SignalAccepted.from_json(row["payload"])
    assert accepted.signal.symbol == "BTC/USDT:USDT"
    assert accepted.signal.intent is Intent.ENTER_SHORT


async def test_the_same_alert_twice_returns_the_first_signal_and_publishes_once(
    signal: SignalHarness,
) -> None:
    first = await signal.post_alert(template_alert())
    again = await signal.post_alert(template_alert())

    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json() == {"signal_id": first.json()["signal_id"], "duplicate": True}
    assert len(await signal.outbox()) == 1
    assert len(await signal.signals()) == 1


async def test_a_new_alert_from_the_same_strategy_is_a_new_signal(signal: SignalHarness) -> None:
    first = await signal.post_alert(template_alert())
    later = await signal.post_alert(template_alert(timenow="2024-01-15T11:30:00Z"))

    assert later.status_code == 202
    assert later.json()["signal_id"] != first.json()["signal_id"]
    assert len(await signal.outbox()) == 2


async def test_a_wrong_secret_is_refused_and_recorded_without_the_secret(
    signal: SignalHarness,
) -> None:
    response = await signal.post_alert(template_alert(secret="guessed-secret-999"))

    assert response.status_code == 401
    assert response.json() == {"detail": "invalid secret"}
    [rejection] = await signal.rejections()
    assert rejection["reason"] == "invalid_secret"
    assert rejection["source"] == "tradingview"
    assert rejection["remote_address"] == "127.0.0.1"
    assert rejection["raw_body"] is None  # what an unauthenticated caller sent is not kept
    assert await signal.outbox() == []
    assert await signal.signals() == []


async def test_an_alert_without_a_secret_is_refused(signal: SignalHarness) -> None:
    response = await signal.post_alert(template_alert(secret=None))

    assert response.status_code == 401
    assert await signal.outbox() == []


async def test_a_malformed_alert_names_the_field_and_the_reason(signal: SignalHarness) -> None:
    response = await signal.post_alert(template_alert(action="hold"))

    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["field"] == "action"
    assert problem["reason"] == "must be 'buy' or 'sell'"
    [rejection] = await signal.rejections()
    assert (rejection["reason"], rejection["field"]) == ("invalid_input", "action")
    assert WEBHOOK_SECRET not in rejection["raw_body"]
    assert await signal.outbox() == []
    assert await signal.signals() == []


async def test_a_body_that_is_not_an_alert_is_refused_as_such(signal: SignalHarness) -> None:
    response = await signal.http.post(
        "/v1/webhooks/tradingview",
        content=b'{"ticker": "BTCUSDT", ',
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["field"] == "body"
    assert problem["reason"].startswith("is not valid JSON")
    assert await signal.outbox() == []


async def test_an_unfilled_placeholder_is_refused(signal: SignalHarness) -> None:
    response = await signal.post_alert(template_alert(close="{{close}}"))

    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["field"] == "close"
    assert "placeholder" in problem["reason"]


async def test_a_ticker_the_venue_does_not_list_is_refused(signal: SignalHarness) -> None:
    response = await signal.post_alert(template_alert(ticker="DOGEUSDT"))

    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["field"] == "ticker"
    assert "unknown symbol" in problem["reason"]
    [rejection] = await signal.rejections()
    assert rejection["reason"] == "unknown_symbol"
    assert await signal.outbox() == []


async def test_a_venue_without_markets_is_refused(signal: SignalHarness) -> None:
    response = await signal.post_alert(template_alert(venue="kraken"))

    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["field"] == "venue"
    assert "not a configured venue" in problem["reason"]


async def test_an_unknown_symbol_with_a_wrong_secret_answers_only_401(
    signal: SignalHarness,
) -> None:
    response = await signal.post_alert(template_alert(ticker="DOGEUSDT", secret="nope"))

    assert response.status_code == 401


async def test_an_oversized_body_is_refused_before_parsing(tmp_path: Path) -> None:
    async with running_signal(tmp_path, max_body_bytes=1024) as signal:
        alert = template_alert(comment="x" * 400, order_id="y" * 100)
        body = json.dumps(alert) + " " * 1024  # valid JSON, merely too long

        response = await signal.http.post(
            "/v1/webhooks/tradingview",
            content=body.encode(),
            headers={"Content-Type": "application/json"},
        )

        assert response.status_code == 413
        [rejection] = await signal.rejections()
        assert rejection["reason"] == "body_too_large"
        assert rejection["raw_body"] is None
        assert await signal.outbox() == []


async def test_an_oversized_body_without_a_length_is_refused_while_reading(
    tmp_path: Path,
) -> None:
    async with running_signal(tmp_path, max_body_bytes=1024) as signal:

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield b" " * 200

        response = await signal.http.post(
            "/v1/webhooks/tradingview",
            content=chunks(),
            headers={"Content-Type": "application/json"},
        )

        assert response.status_code == 413


async def test_an_alert_without_an_account_goes_to_the_default_account(
    signal: SignalHarness,
) -> None:
    response = await signal.post_alert(template_alert(account=None))

    assert response.status_code == 202
    [row] = await signal.signals()
    assert row["account"] == "main"


async def test_the_alert_may_name_another_configured_venue(signal: SignalHarness) -> None:
    response = await signal.post_alert(template_alert(venue="binance", ticker="SOLUSDT"))

    assert response.status_code == 202
    [row] = await signal.signals()
    assert (row["venue"], row["symbol"]) == ("binance", "SOL/USDT")


async def test_with_an_hmac_key_the_signature_header_is_required(tmp_path: Path) -> None:
    key = "proxy-signing-key"
    async with running_signal(tmp_path, webhook_hmac_key=key) as signal:
        body = json.dumps(template_alert()).encode()
        signature = "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()

        unsigned = await signal.post_alert(template_alert())
        signed = await signal.http.post(
            "/v1/webhooks/tradingview",
            content=body,
            headers={"Content-Type": "application/json", "X-Ordo-Signature": signature},
        )

        assert unsigned.status_code == 401
        assert unsigned.json() == {"detail": "invalid signature"}
        assert signed.status_code == 202
        assert [r["reason"] for r in await signal.rejections()] == ["invalid_signature"]


async def test_an_address_outside_the_allow_list_is_refused(tmp_path: Path) -> None:
    async with running_signal(tmp_path, allowed_ips=("52.89.214.238", "10.0.0.0/8")) as signal:
        response = await signal.post_alert(template_alert())

        assert response.status_code == 403
        [rejection] = await signal.rejections()
        assert rejection["reason"] == "forbidden_address"
        assert await signal.outbox() == []


async def test_an_address_inside_an_allowed_network_is_served(tmp_path: Path) -> None:
    async with running_signal(tmp_path, allowed_ips=("127.0.0.0/8",)) as signal:
        response = await signal.post_alert(template_alert())

        assert response.status_code == 202


async def test_calls_beyond_the_rate_limit_are_refused_with_a_retry_hint(tmp_path: Path) -> None:
    async with running_signal(tmp_path, rate_limit_per_minute=2) as signal:
        answers = [await signal.post_alert(template_alert(order_id=f"Long-{n}")) for n in range(3)]

        assert [a.status_code for a in answers] == [202, 202, 429]
        assert 1 <= int(answers[2].headers["Retry-After"]) <= 60
        assert len(await signal.outbox()) == 2
        assert await signal.rejections() == []  # a flood does not become a flood of rows


async def test_an_alert_is_accepted_while_nats_is_down_and_announced_later(
    signal: SignalHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def nats_unreachable(*_: object, **__: object) -> None:
        raise ConnectionError("nats is down")

    monkeypatch.setattr(signal.kit.breakers, "call", nats_unreachable)

    response = await signal.post_alert(template_alert())

    assert response.status_code == 202
    [row] = await signal.outbox()
    assert row["correlation_id"] == response.json()["signal_id"]
    assert row["sent_at"] is None  # the outbox sweeper publishes it once NATS is back


async def test_an_alert_id_reused_by_another_alert_is_refused_not_dropped(
    signal: SignalHarness,
) -> None:
    first = await signal.post_alert(template_alert(alert_id="my-alert"))
    next_alert = await signal.post_alert(
        template_alert(alert_id="my-alert", contracts="0.7", timenow="2024-01-15T11:30:00Z")
    )

    assert first.status_code == 202
    assert next_alert.status_code == 409
    [problem] = next_alert.json()["detail"]
    assert problem["field"] == "alert_id"
    [rejection] = await signal.rejections()
    assert rejection["reason"] == "key_reused"
    assert WEBHOOK_SECRET not in rejection["raw_body"]
    assert len(await signal.outbox()) == 1
