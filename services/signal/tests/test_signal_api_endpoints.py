"""POST /v1/signals and GET /v1/signals/{id} with a bearer token; the docs and ops endpoints."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from signal_support import SignalHarness, api_body, bearer, running_signal

from ordo.contracts.enums import SignalSource
from ordo.contracts.signals import SignalAccepted


@pytest.fixture
async def signal(tmp_path: Path) -> AsyncIterator[SignalHarness]:
    async with running_signal(tmp_path) as harness:
        yield harness


async def test_a_signal_with_a_valid_token_is_accepted(signal: SignalHarness) -> None:
    response = await signal.http.post("/v1/signals", json=api_body(), headers=bearer())

    assert response.status_code == 202
    signal_id = response.json()["signal_id"]
    [row] = await signal.outbox()
    accepted = SignalAccepted.from_json(row["payload"])
    assert accepted.correlation_id == accepted.signal_id == signal_id
    assert accepted.source is SignalSource.API
    assert accepted.signal.symbol == "ETH/USDT"


async def test_the_same_idempotency_key_returns_the_first_signal(signal: SignalHarness) -> None:
    first = await signal.http.post("/v1/signals", json=api_body(), headers=bearer())
    again = await signal.http.post("/v1/signals", json=api_body(), headers=bearer())
    other = await signal.http.post("/v1/signals", json=api_body("bot-0002"), headers=bearer())

    assert again.status_code == 200
    assert again.json() == {"signal_id": first.json()["signal_id"], "duplicate": True}
    assert other.status_code == 202
    assert len(await signal.outbox()) == 2


@pytest.mark.parametrize(
    "headers",
    [{}, bearer("wrong-token"), {"Authorization": "Basic dXNlcjpwYXNz"}],
    ids=["no token", "wrong token", "not a bearer token"],
)
async def test_a_call_without_the_token_is_refused(
    signal: SignalHarness, headers: dict[str, str]
) -> None:
    response = await signal.http.post("/v1/signals", json=api_body(), headers=headers)

    assert response.status_code == 401
    assert response.json() == {"detail": "invalid token"}
    assert response.headers["WWW-Authenticate"] == "Bearer"
    [rejection] = await signal.rejections()
    assert (rejection["source"], rejection["reason"]) == ("api", "invalid_token")
    assert await signal.outbox() == []


async def test_an_entry_without_a_size_names_the_field_and_the_reason(
    signal: SignalHarness,
) -> None:
    response = await signal.http.post("/v1/signals", json=api_body(size=None), headers=bearer())

    assert response.status_code == 422
    assert response.json() == {
        "detail": [{"field": "signal.size", "reason": "is required for enter_long"}]
    }
    [rejection] = await signal.rejections()
    assert rejection["field"] == "signal.size"
    assert await signal.outbox() == []


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        (api_body(size={"unit": "quote", "value": 250.5}), "signal.size.value", "never as floats"),
        (api_body(intent="buy"), "signal.intent", "must be 'enter_long'"),
        (api_body(symbol="DOGEUSDT"), "signal.symbol", "unknown symbol"),
        (api_body(venue="kraken"), "signal.venue", "not a configured venue"),
        ({**api_body(), "priority": "high"}, "priority", "is not a known field"),
        ({"signal": api_body()["signal"]}, "idempotency_key", "is required"),
        ([1, 2], "body", "must be a JSON object"),
    ],
    ids=["float", "intent", "symbol", "venue", "extra field", "no key", "not an object"],
)
async def test_malformed_requests_name_the_field_and_the_reason(
    signal: SignalHarness, body: object, field: str, reason: str
) -> None:
    response = await signal.http.post("/v1/signals", json=body, headers=bearer())

    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["field"] == field
    assert reason in problem["reason"]
    assert await signal.outbox() == []


async def test_a_body_that_is_not_json_is_refused(signal: SignalHarness) -> None:
    response = await signal.http.post("/v1/signals", content=b"enter long please", headers=bearer())

    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["field"] == "body"
    assert problem["reason"].startswith("is not valid JSON")


async def test_an_operator_reads_a_recorded_signal(signal: SignalHarness) -> None:
    submitted = await signal.http.post("/v1/signals", json=api_body(), headers=bearer())
    signal_id = submitted.json()["signal_id"]

    response = await signal.http.get(f"/v1/signals/{signal_id}", headers=bearer())

    assert response.status_code == 200
    view = response.json()
    assert view["signal_id"] == signal_id
    assert view["source"] == "api"
    assert view["dedupe_key"] == "api:bot-0001"
    assert view["signal"]["symbol"] == "ETH/USDT"
    assert view["signal"]["size"] == {"unit": "quote", "value": "250"}


async def test_reading_signals_needs_the_token_and_an_existing_id(signal: SignalHarness) -> None:
    unknown = await signal.http.get("/v1/signals/nope", headers=bearer())
    anonymous = await signal.http.get("/v1/signals/nope")

    assert unknown.status_code == 404
    assert anonymous.status_code == 401


async def test_the_api_is_documented_at_docs(signal: SignalHarness) -> None:
    docs = await signal.http.get("/docs")
    schema = (await signal.http.get("/openapi.json")).json()

    assert docs.status_code == 200
    assert schema["info"]["title"] == "Ordo signal intake"
    assert {"/v1/webhooks/tradingview", "/v1/signals", "/v1/signals/{signal_id}"} <= set(
        schema["paths"]
    )
    components = schema["components"]["schemas"]
    assert {"TradingViewAlert", "SignalApiRequest", "IntakeAnswer", "InvalidInput"} <= set(
        components
    )
    webhook = schema["paths"]["/v1/webhooks/tradingview"]["post"]
    assert set(webhook["requestBody"]["content"]) == {"application/json", "text/plain"}
    assert {"200", "202", "401", "413", "422"} <= set(webhook["responses"])


async def test_the_ops_endpoints_share_the_server(signal: SignalHarness) -> None:
    metrics = await signal.http.get("/metrics")

    assert metrics.status_code == 200
    assert "ordo_outbox_backlog" in metrics.text


async def test_an_idempotency_key_reused_for_another_signal_is_refused_as_a_conflict(
    signal: SignalHarness,
) -> None:
    first = await signal.http.post("/v1/signals", json=api_body(), headers=bearer())
    reused = await signal.http.post(
        "/v1/signals", json=api_body(intent="enter_short"), headers=bearer()
    )

    assert first.status_code == 202
    assert reused.status_code == 409
    [problem] = reused.json()["detail"]
    assert problem["field"] == "idempotency_key"
    assert first.json()["signal_id"] in problem["reason"]
    [rejection] = await signal.rejections()
    assert rejection["reason"] == "key_reused"
    assert len(await signal.outbox()) == 1
    assert len(await signal.signals()) == 1


async def test_a_retry_spelling_the_same_signal_differently_is_a_duplicate(
    signal: SignalHarness,
) -> None:
    first = await signal.http.post("/v1/signals", json=api_body(), headers=bearer())
    retry = await signal.http.post(
        "/v1/signals",
        json=api_body(symbol="ETH/USDT", size={"unit": "quote", "value": "250.00"}),
        headers=bearer(),
    )

    assert retry.status_code == 200
    assert retry.json() == {"signal_id": first.json()["signal_id"], "duplicate": True}
