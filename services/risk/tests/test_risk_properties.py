"""Whatever the proposals and however their orders fill, approved exposure stays within limits."""

from collections import Counter
from dataclasses import dataclass, replace
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st
from risk_accounts import account_context, quote
from risk_factories import context, order, position, proposal

from ordo.contracts.enums import Side
from ordo.contracts.orders import OrderSpec
from ordo.risk.domain.checks import DailyActivity, OrderCounts, RiskContext, evaluate
from ordo.risk.domain.exposure import Instrument
from ordo.risk.domain.pricing import notional

PRICE = Decimal("250.5")
CENT = Decimal("0.01")

# Small whole quantities make orders collide with the limit and with each other often; the
# boundary tests cover cents.
amounts = st.integers(min_value=1, max_value=12).map(Decimal)


@dataclass(frozen=True)
class Scenario:
    limit: Decimal
    start: tuple[Decimal, ...]  # per strategy
    proposals: tuple[tuple[OrderSpec, ...], ...]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    whole_limit = draw(st.integers(min_value=1, max_value=10))
    limit = Decimal(whole_limit)
    starting = st.integers(min_value=-whole_limit, max_value=whole_limit).map(Decimal)
    start = tuple(draw(st.lists(starting, max_size=2)))
    if abs(sum(start, Decimal(0))) > limit:
        start = ()
    order_specs = st.builds(
        lambda side, quantity, reduce_only, strategy: order(
            side, quantity, price=str(PRICE), reduce_only=reduce_only, strategy=strategy
        ),
        side=st.sampled_from(["buy", "sell"]),
        quantity=amounts,
        reduce_only=st.booleans(),
        strategy=st.sampled_from(["s0", "s1", "s2"]),
    )
    proposals = draw(st.lists(st.lists(order_specs, min_size=1, max_size=2).map(tuple), max_size=5))
    return Scenario(limit, start, tuple(proposals))


def venue_fill(net: Decimal, spec: OrderSpec, quantity: Decimal) -> Decimal:
    """What a venue lets fill: a reduce-only order only reduces, and never past flat."""
    if not spec.reduce_only:
        return quantity
    reducible = max(Decimal(0), -net * spec.side.sign)
    return min(quantity, reducible)


@settings(max_examples=1000)
@given(scenario=scenarios(), data=st.data())
def test_approved_proposals_never_take_the_position_past_its_limits(
    scenario: Scenario, data: st.DataObject
) -> None:
    notional_limit = scenario.limit * PRICE
    ctx = context(
        *(position(q, strategy=f"s{i}") for i, q in enumerate(scenario.start)),
        max_position_quantity=str(scenario.limit),
        max_position_notional=str(notional_limit),
    )
    approved: list[OrderSpec] = []
    for orders in scenario.proposals:
        if evaluate(proposal(*orders), ctx).approved:
            for spec in orders:
                ctx.exposure.reserve(spec)
            approved.extend(orders)

    # Each order fills in two parts, any amount each, interleaved in any sequence.
    parts = [(spec, half) for spec in approved for half in (0, 1)]
    sequence = data.draw(st.permutations(parts))
    filled = {spec.order_id: Decimal(0) for spec in approved}
    net = sum(scenario.start, Decimal(0))
    for spec, half in sequence:
        left = spec.quantity - filled[spec.order_id]
        wanted = left if half else data.draw(st.decimals(min_value=0, max_value=left, places=1))
        quantity = venue_fill(net, spec, wanted)
        filled[spec.order_id] += quantity
        net += quantity * spec.side.sign

        assert abs(net) <= scenario.limit
        assert notional(net, PRICE) <= notional_limit


@given(
    limit=st.decimals(min_value=1, max_value=10_000, places=2),
    quantity=st.decimals(min_value=CENT, max_value=Decimal(150), places=2),
    price=st.decimals(min_value=CENT, max_value=1000, places=2),
)
def test_an_order_is_approved_exactly_when_its_notional_is_within_the_limit(
    limit: Decimal, quantity: Decimal, price: Decimal
) -> None:
    spec = order("buy", quantity, price=str(price))

    decision = evaluate(proposal(spec), context(max_notional_per_order=str(limit)))

    assert decision.approved is (quantity * price <= limit)


@given(scenario=scenarios())
def test_evaluating_never_changes_what_the_account_holds(scenario: Scenario) -> None:
    ctx = context(
        *(position(q, strategy=f"s{i}") for i, q in enumerate(scenario.start)),
        max_position_quantity=str(scenario.limit),
    )
    before = (ctx.exposure.positions(), ctx.exposure.reservations())
    for orders in scenario.proposals:
        evaluate(proposal(*orders), ctx)

    assert (ctx.exposure.positions(), ctx.exposure.reservations()) == before
    assert all(
        ctx.exposure.worst_case_position("paper", "BTC/USDT", side)
        == sum(scenario.start, Decimal(0))
        for side in Side
    )


# -- the account-wide limits: whatever is proposed, the approvals stay within them ---------------

SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")
account_orders = st.builds(
    lambda side, quantity, symbol, strategy: order(
        side, quantity, price=str(PRICE), symbol=symbol, strategy=strategy
    ),
    side=st.sampled_from(["buy", "sell"]),
    quantity=amounts,
    symbol=st.sampled_from(SYMBOLS),
    strategy=st.sampled_from(["s0", "s1"]),
)
account_proposals = st.lists(
    st.lists(account_orders, min_size=1, max_size=3).map(tuple), min_size=1, max_size=8
)


def approve_in_turn(
    proposals: list[tuple[OrderSpec, ...]], **limits: object
) -> tuple[list[OrderSpec], RiskContext]:
    """Decide each proposal on what the ones approved before it left: reserved, counted."""
    ctx = account_context(quotes=tuple(quote(str(PRICE), symbol=s) for s in SYMBOLS), **limits)
    approved: list[OrderSpec] = []
    for orders in proposals:
        if not evaluate(proposal(*orders), ctx).approved:
            continue
        for spec in orders:
            ctx.exposure.reserve(spec)
        approved.extend(orders)
        by_strategy = Counter(spec.strategy for spec in approved)
        ctx = replace(
            ctx,
            today=DailyActivity(traded_notional=sum_notional(approved)),
            recent_orders=OrderCounts(account=len(approved), by_strategy=dict(by_strategy)),
        )
    return approved, ctx


def sum_notional(orders: list[OrderSpec]) -> Decimal:
    return sum((notional(spec.quantity, PRICE) for spec in orders), Decimal(0))


@given(proposals=account_proposals, whole=st.integers(min_value=1, max_value=40))
def test_approvals_never_trade_more_than_the_daily_notional(
    proposals: list[tuple[OrderSpec, ...]], whole: int
) -> None:
    limit = PRICE * whole
    # Sells from flat open shorts: nothing here reduces exposure, so everything counts.
    approved, _ = approve_in_turn(proposals, max_daily_traded_notional=str(limit))

    assert sum_notional(approved) <= limit


@given(proposals=account_proposals, whole=st.integers(min_value=1, max_value=40))
def test_approvals_never_take_gross_exposure_past_its_limit(
    proposals: list[tuple[OrderSpec, ...]], whole: int
) -> None:
    limit = PRICE * whole
    _, ctx = approve_in_turn(proposals, max_gross_exposure=str(limit))

    # Whatever fills, each symbol's position lies between its two worst cases.
    gross = sum(
        (ctx.exposure.largest_position(Instrument("paper", s)) * PRICE for s in SYMBOLS),
        Decimal(0),
    )
    assert gross <= limit


@given(
    proposals=account_proposals,
    per_account=st.integers(min_value=1, max_value=6),
    per_strategy=st.integers(min_value=1, max_value=4),
)
def test_approvals_never_exceed_the_order_rate(
    proposals: list[tuple[OrderSpec, ...]], per_account: int, per_strategy: int
) -> None:
    approved, _ = approve_in_turn(
        proposals,
        order_rate_window_seconds=60,
        max_orders_per_account=per_account,
        max_orders_per_strategy=per_strategy,
    )

    assert len(approved) <= per_account
    assert all(n <= per_strategy for n in Counter(s.strategy for s in approved).values())
