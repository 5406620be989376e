"""The cost of the domain's hot paths in one process, with no I/O: what a message pays before
any store or broker is touched."""

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from itertools import count
from typing import Any

from ordo.contracts.enums import ExecutionStatus, Intent, OrderType, Side, SignalSource, SizeUnit
from ordo.contracts.execution import ExecutionReport, Fill
from ordo.contracts.orders import OrderProposed, OrderSpec, PositionView
from ordo.contracts.signals import SignalAccepted, SignalRequest, Size
from ordo.order.domain import Order
from ordo.order.domain.planning import MarketRules, plan_orders
from ordo.risk.domain.checks import DailyActivity, OrderCounts, RiskContext, evaluate
from ordo.risk.domain.exposure import Exposure, Instrument
from ordo.risk.domain.limits import RiskLimits
from ordo.risk.domain.quotes import Quote

NOW = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
ACCOUNT, VENUE = "bench", "paper"
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT", "ADA/USDT")


@dataclass(frozen=True)
class Cost:
    name: str
    runs: int
    microseconds: float  # median of the rounds, per operation

    def to_json(self) -> dict[str, Any]:
        return {"runs": self.runs, "microseconds_per_operation": round(self.microseconds, 2)}


def measure_in_process(runs: int = 2_000, rounds: int = 5) -> list[Cost]:
    return [
        _measure("risk: one proposal against every check", _risk_evaluation(), runs, rounds),
        _measure("order: one fill report through the FSM", _fill_transition(runs), runs, rounds),
        _measure("order: one entry plan (sized, rounded)", _entry_plan(), runs, rounds),
    ]


Operation = Callable[[], object]


def _measure(name: str, make_op: Callable[[], Operation], runs: int, rounds: int) -> Cost:
    per_round = []
    for _ in range(rounds):
        op = make_op()
        start = time.perf_counter_ns()
        for _ in range(runs):
            op()
        per_round.append((time.perf_counter_ns() - start) / runs / 1000)
    return Cost(name, runs, sorted(per_round)[rounds // 2])


def _risk_evaluation() -> Callable[[], Callable[[], object]]:
    """An account holding five positions with open reservations, under every limit (fresh quotes,
    equity, the day's activity and the order-rate window included)."""
    exposure = Exposure(ACCOUNT)
    for i, symbol in enumerate(SYMBOLS):
        exposure.apply_position(_position(symbol, Decimal(i + 1)))
        exposure.reserve(_spec(f"held-{i}", symbol, Decimal("0.5")))
    quotes = {
        Instrument(VENUE, symbol): Quote(
            VENUE, symbol, Decimal("99.9"), Decimal("100.1"), Decimal(100), NOW
        )
        for symbol in SYMBOLS
    }
    context = RiskContext(
        limits=RiskLimits(
            max_notional_per_order=Decimal(250_000),
            max_position_notional=Decimal(500_000),
            max_position_quantity=Decimal(1_000),
            max_position_percent_of_equity=Decimal(50),
            max_open_positions=20,
            starting_capital=Decimal(1_000_000),
            max_gross_exposure=Decimal(2_000_000),
            max_leverage=Decimal(2),
            max_symbol_concentration_percent=Decimal(60),
            max_daily_traded_notional=Decimal(5_000_000),
            max_daily_realised_loss=Decimal(20_000),
            max_drawdown_percent=Decimal(10),
            order_rate_window_seconds=60,
            max_orders_per_account=120,
            max_orders_per_strategy=60,
            price_collar_percent=Decimal(5),
            quote_max_age_seconds=Decimal(10),
            max_quote_spread_percent=Decimal(2),
            require_stop_loss=True,
        ),
        exposure=exposure,
        quotes=quotes,
        now=NOW,
        today=DailyActivity(traded_notional=Decimal(10_000), realised_pnl=Decimal(-500)),
        peak_equity=Decimal(1_001_000),
        recent_orders=OrderCounts(account=10, by_strategy={"bench": 10}),
    )
    entry = _spec("new-1", "BTC/USDT", Decimal("0.01"))
    stop = entry.model_copy(
        update={
            "order_id": "new-1-stop",
            "side": Side.SELL,
            "order_type": OrderType.STOP_MARKET,
            "stop_price": Decimal(95),
            "reduce_only": True,
        }
    )
    proposal = OrderProposed(
        proposal_id="p-1",
        signal_id="s-1",
        account=ACCOUNT,
        orders=(entry, stop),
        correlation_id="s-1",
        producer="bench",
    )

    def make() -> Callable[[], object]:
        return lambda: evaluate(proposal, context)

    return make


def _fill_transition(runs: int) -> Callable[[], Callable[[], object]]:
    """A submitted order taking the venue's FILLED report: fill accounting plus the transition."""

    def make() -> Callable[[], object]:
        orders = []
        for _ in range(runs):
            order = Order.new(_spec("o-1", "BTC/USDT", Decimal(1)), "s-1", "p-1", NOW)
            order.submit(NOW)
            orders.append(order)
        report = ExecutionReport(
            order_id="o-1",
            venue_order_id="v-1",
            account=ACCOUNT,
            venue=VENUE,
            symbol="BTC/USDT",
            side=Side.BUY,
            status=ExecutionStatus.FILLED,
            cumulative_quantity=Decimal(1),
            fill=Fill(
                fill_id="f-1",
                quantity=Decimal(1),
                price=Decimal(60_000),
                fee=Decimal(60),
                fee_currency="USDT",
                filled_at=NOW,
            ),
            correlation_id="s-1",
            producer="bench",
        )
        pending = iter(orders)
        return lambda: next(pending).apply_report(report, NOW)

    return make


def _entry_plan() -> Callable[[], Callable[[], object]]:
    rules = MarketRules(
        tick_size=Decimal("0.01"),
        step_size=Decimal("0.0001"),
        min_notional=Decimal(5),
        taker_fee_rate=Decimal("0.001"),
        expected_slippage=Decimal("0.0005"),
    )
    signal = SignalAccepted(
        signal_id="s-1",
        source=SignalSource.TRADINGVIEW,
        received_at=NOW,
        signal=SignalRequest(
            account=ACCOUNT,
            strategy="bench",
            venue=VENUE,
            symbol="BTC/USDT",
            intent=Intent.ENTER_LONG,
            size=Size(unit=SizeUnit.QUOTE, value=Decimal(1_000)),
            reference_price=Decimal("60123.45"),
        ),
        correlation_id="s-1",
        producer="bench",
    )
    ids = count()

    def make() -> Callable[[], object]:
        return lambda: plan_orders(signal, None, rules, lambda: f"o-{next(ids)}")

    return make


def _spec(order_id: str, symbol: str, quantity: Decimal) -> OrderSpec:
    return OrderSpec(
        order_id=order_id,
        account=ACCOUNT,
        strategy="bench",
        venue=VENUE,
        symbol=symbol,
        side=Side.BUY,
        order_type=OrderType.MARKET,
        quantity=quantity,
        reference_price=Decimal(100),
    )


def _position(symbol: str, quantity: Decimal) -> PositionView:
    return PositionView(
        account=ACCOUNT,
        strategy="bench",
        venue=VENUE,
        symbol=symbol,
        quantity=quantity,
        average_entry=Decimal(100),
        realised_pnl=Decimal(0),
        fees=Decimal(0),
        version=1,
        updated_at=NOW,
    )
