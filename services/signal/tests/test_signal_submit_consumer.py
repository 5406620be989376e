"""SubmitSignal over NATS: accepted like an API signal, or answered with SignalRejected."""

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from signal_support import SignalHarness, bearer, running_signal

from ordo.contracts.enums import Intent, SignalSource, SizeUnit
from ordo.contracts.signals import (
    SignalAccepted,
    SignalRejected,
    SignalRequest,
    Size,
    SubmitSignal,
)
from ordo.contracts.subjects import Subject


@pytest.fixture
async def signal(tmp_path: Path) -> AsyncIterator[SignalHarness]:
    async with running_signal(tmp_path) as harness:
        yield harness


def submission(key: str = "grid-0001", **signal_changes: object) -> SubmitSignal:
    fields: dict[str, object] = {
        "account": "main",
        "strategy": "grid",
        "venue": "paper",
        "symbol": "BTCUSDT",
        "intent": Intent.ENTER_LONG,
        "size": Size(unit=SizeUnit.QUANTITY, value=Decimal("0.1")),
    }
    fields.update(signal_changes)
    return SubmitSignal(
        correlation_id="operator-run-7",
        producer="operator",
        idempotency_key=key,
        source=SignalSource.STRATEGY,
        signal=SignalRequest.model_validate(fields),
    )


async def submit(signal: SignalHarness, *messages: SubmitSignal) -> None:
    for message in messages:
        await signal.broker.publish(message.to_json(), str(Subject.SIGNAL_SUBMIT), stream="SIGNALS")


async def test_a_submitted_signal_is_accepted_under_a_new_signal_id(
    signal: SignalHarness,
) -> None:
    command = submission()

    await submit(signal, command)

    [row] = await signal.outbox()
    assert row["subject"] == "signal.accepted.v1"
    accepted = SignalAccepted.from_json(row["payload"])
    assert accepted.correlation_id == accepted.signal_id  # a new flow starts here
    assert accepted.causation_id == command.message_id
    assert accepted.source is SignalSource.STRATEGY
    assert accepted.signal.symbol == "BTC/USDT"
    [recorded] = await signal.signals()
    assert recorded["signal_id"] == accepted.signal_id
    assert recorded["dedupe_key"] == "strategy:grid-0001"


async def test_an_unknown_symbol_is_rejected_not_retried(signal: SignalHarness) -> None:
    command = submission(symbol="DOGEUSDT")

    await submit(signal, command)

    [row] = await signal.outbox()
    assert row["subject"] == "signal.rejected.v1"
    rejected = SignalRejected.from_json(row["payload"])
    assert rejected.reason == "unknown_symbol"
    assert rejected.detail is not None
    assert rejected.detail.startswith("signal.symbol: unknown symbol")
    assert rejected.correlation_id == command.correlation_id
    assert rejected.causation_id == command.message_id
    [rejection] = await signal.rejections()
    assert rejection["id"] == rejected.signal_id
    assert rejection["field"] == "signal.symbol"
    assert await signal.signals() == []


async def test_an_entry_without_a_size_is_rejected(signal: SignalHarness) -> None:
    await submit(signal, submission(size=None))

    [row] = await signal.outbox()
    rejected = SignalRejected.from_json(row["payload"])
    assert rejected.reason == "invalid_input"
    assert rejected.detail == "signal.size: is required for enter_long"


async def test_a_venue_without_markets_is_rejected(signal: SignalHarness) -> None:
    await submit(signal, submission(venue="kraken"))

    [row] = await signal.outbox()
    assert SignalRejected.from_json(row["payload"]).reason == "unknown_venue"


async def test_the_same_idempotency_key_twice_makes_one_signal(signal: SignalHarness) -> None:
    # Two distinct commands (two message ids): the inbox does not see a repeat, the key does.
    await submit(signal, submission(), submission())

    assert [row["subject"] for row in await signal.outbox()] == ["signal.accepted.v1"]
    assert len(await signal.signals()) == 1


async def test_an_api_key_repeated_over_nats_is_the_same_signal(signal: SignalHarness) -> None:
    body = {
        "idempotency_key": "bot-0009",
        "signal": {
            "account": "main",
            "strategy": "bot",
            "venue": "paper",
            "symbol": "BTC/USDT",
            "intent": "exit_long",
        },
    }
    first = await signal.http.post("/v1/signals", json=body, headers=bearer())
    command = submission("bot-0009", strategy="bot", intent=Intent.EXIT_LONG, size=None)

    await submit(signal, command.model_copy(update={"source": SignalSource.API}))

    assert first.status_code == 202
    assert len(await signal.outbox()) == 1
    assert len(await signal.signals()) == 1


async def test_an_idempotency_key_reused_for_another_signal_is_rejected(
    signal: SignalHarness,
) -> None:
    first, reused = submission(), submission(intent=Intent.ENTER_SHORT)

    await submit(signal, first, reused)

    rows = await signal.outbox()
    assert [row["subject"] for row in rows] == ["signal.accepted.v1", "signal.rejected.v1"]
    rejected = SignalRejected.from_json(rows[1]["payload"])
    assert rejected.causation_id == reused.message_id
    assert rejected.reason == "key_reused"
    assert rejected.detail is not None
    assert rejected.detail.startswith("idempotency_key: ")
    assert len(await signal.signals()) == 1
