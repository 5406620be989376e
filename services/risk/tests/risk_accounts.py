"""Builders for contexts with quotes, equity, the day's activity and the order-rate window."""

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from risk_factories import SYMBOL, VENUE, exposure

from ordo.contracts.enums import TradingState
from ordo.contracts.orders import OrderSpec, PositionView
from ordo.risk.domain.checks import DailyActivity, OrderCounts, RiskContext
from ordo.risk.domain.exposure import Instrument
from ordo.risk.domain.limits import RiskLimits
from ordo.risk.domain.quotes import Quote

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
NOTHING_TODAY = DailyActivity()
NO_ORDERS = OrderCounts()


def quote(
    last: str = "100",
    *,
    symbol: str = SYMBOL,
    venue: str = VENUE,
    bid: str | None = None,
    ask: str | None = None,
    age_seconds: str = "0",
) -> Quote:
    return Quote(
        venue=venue,
        symbol=symbol,
        bid=None if bid is None else Decimal(bid),
        ask=None if ask is None else Decimal(ask),
        last=Decimal(last),
        quoted_at=NOW - timedelta(seconds=float(age_seconds)),
    )


def realised(view: PositionView, pnl: str) -> PositionView:
    return view.model_copy(update={"realised_pnl": Decimal(pnl)})


def account_context(
    *positions: PositionView,
    reserved: tuple[OrderSpec, ...] = (),
    quotes: tuple[Quote, ...] = (),
    today: DailyActivity = NOTHING_TODAY,
    peak: str | None = None,
    recent: OrderCounts = NO_ORDERS,
    strategies: Mapping[str, Mapping[str, object]] | None = None,
    state: TradingState = TradingState.ACTIVE,
    **limits: object,
) -> RiskContext:
    base = RiskLimits.model_validate(limits)
    return RiskContext(
        limits=base,
        exposure=exposure(*positions, reserved=reserved),
        trading_state=state,
        strategy_limits={
            name: base.overridden_by(RiskLimits.model_validate(values))
            for name, values in (strategies or {}).items()
        },
        quotes={Instrument(q.venue, q.symbol): q for q in quotes},
        now=NOW,
        today=today,
        peak_equity=None if peak is None else Decimal(peak),
        recent_orders=recent,
    )
