"""The dedupe window: within it a repeat is the first signal; after it, a new signal."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from signal_support import running_signal

from ordo.contracts.enums import Intent, SignalSource, SizeUnit
from ordo.contracts.signals import SignalRequest, Size
from ordo.signal.guards import NoDedupeCache
from ordo.signal.intake import Incoming, Intake

START = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def content_keyed_entry() -> Incoming:
    """An alert whose template carries no id and no time: only its content identifies it."""
    request = SignalRequest(
        account="main",
        strategy="trend",
        venue="paper",
        symbol="BTC/USDT",
        intent=Intent.ENTER_LONG,
        size=Size(unit=SizeUnit.QUANTITY, value=Decimal("0.5")),
    )
    return Incoming(SignalSource.TRADINGVIEW, "tv-content-abc", request, raw_body="{}")


async def test_a_repeat_within_the_window_is_the_first_signal(tmp_path: Path) -> None:
    async with running_signal(tmp_path) as signal:
        clock = Clock()
        intake = Intake(
            signal.kit.outbox,
            signal.kit.db,
            NoDedupeCache(),
            dedupe_window=timedelta(hours=1),
            rejection_retention=timedelta(days=1),
            clock=clock,
        )

        first = await intake.accept(content_keyed_entry())
        clock.now += timedelta(minutes=59)
        repeat = await intake.accept(content_keyed_entry())

        assert repeat.duplicate
        assert repeat.signal_id == first.signal_id
        assert len(await signal.outbox()) == 1


async def test_the_same_alert_after_the_window_is_a_new_signal(tmp_path: Path) -> None:
    async with running_signal(tmp_path) as signal:
        clock = Clock()
        intake = Intake(
            signal.kit.outbox,
            signal.kit.db,
            NoDedupeCache(),
            dedupe_window=timedelta(hours=1),
            rejection_retention=timedelta(days=1),
            clock=clock,
        )

        first = await intake.accept(content_keyed_entry())
        clock.now += timedelta(hours=2)
        next_day = await intake.accept(content_keyed_entry())
        clock.now += timedelta(minutes=1)
        repeat_of_next = await intake.accept(content_keyed_entry())

        assert not next_day.duplicate
        assert next_day.signal_id != first.signal_id
        assert repeat_of_next.signal_id == next_day.signal_id
        assert repeat_of_next.duplicate
        rows = {row["signal_id"]: row for row in await signal.signals()}
        assert rows[first.signal_id]["active_dedupe_key"] is None  # retired, still on record
        assert rows[next_day.signal_id]["active_dedupe_key"] == "tv-content-abc"
        assert len(await signal.outbox()) == 2


async def test_old_rejections_are_pruned(tmp_path: Path) -> None:
    async with running_signal(tmp_path) as signal:
        await signal.post_alert({"ticker": "BTCUSDT"})  # refused: no secret, no fields
        assert len(await signal.rejections()) == 1
        clock = Clock()
        clock.now = datetime.now(UTC) + timedelta(days=31)
        intake = Intake(
            signal.kit.outbox,
            signal.kit.db,
            NoDedupeCache(),
            dedupe_window=timedelta(hours=1),
            rejection_retention=timedelta(days=30),
            clock=clock,
        )

        assert await intake.prune_rejections() == 1
        assert await signal.rejections() == []
