"""The report's analytics on known trades, against values worked out by hand here."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import example, given
from hypothesis import strategies as st

from ordo.notifier.domain.analytics import (
    PositionKey,
    PositionStep,
    closed_trades,
    max_drawdown,
    performance,
    sharpe_ratio,
    sortino_ratio,
)
from ordo.notifier.domain.report import ReportWindow, daily_report, money, percent

D = Decimal
GRID = PositionKey("main", "grid", "paper", "BTC/USDT")
DAY = date(2025, 1, 15)
NOON = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)


def step(
    version: int,
    quantity: str,
    realised: str,
    fees: str,
    at: datetime = NOON,
    key: PositionKey = GRID,
) -> PositionStep:
    return PositionStep(key, version, D(quantity), D(realised), D(fees), at)


# A position's life as the OMS publishes it (realised P&L after every fee paid so far):
#   v1 buy 1 @ 100, fee 0.10       q  1   realised  -0.10   (the entry fee is paid)
#   v2 buy 1 @ 110, fee 0.11       q  2   realised  -0.21   average entry 105
#   v3 sell 1 @ 120, fee 0.12      q  1   realised  14.67   (+15 - 0.12)
#   v4 sell 1 @ 100, fee 0.10      q  0   realised   9.57   (-5 - 0.10): trip 1 = 9.57
#   v5 buy 1 @ 100, fee 0.10       q  1   realised   9.47
#   v6 sell 3 @ 90, fee 0.27       q -2   realised  -0.80   (-10 - 0.27): closes 1, opens 2
#        trip 2 = -10 - 0.10 (its entry fee) - 0.09 (1/3 of the reversing fee) = -10.19
#   v7 buy 2 @ 80, fee 0.16        q  0   realised  19.04   (+20 - 0.16)
#        trip 3 = 20 - 0.18 (2/3 of the reversing fee) - 0.16 = 19.66
LIFE = [
    step(1, "1", "-0.10", "0.10"),
    step(2, "2", "-0.21", "0.21"),
    step(3, "1", "14.67", "0.33"),
    step(4, "0", "9.57", "0.43"),
    step(5, "1", "9.47", "0.53"),
    step(6, "-2", "-0.80", "0.80"),
    step(7, "0", "19.04", "0.96"),
]


def test_round_trips_are_after_the_fees_of_both_sides() -> None:
    trades = closed_trades(LIFE)

    assert [trade.pnl for trade in trades] == [D("9.57"), D("-10.19"), D("19.66")]
    # Round trips add up to what the position realised.
    assert sum(trade.pnl for trade in trades) == D("19.04")


def test_steps_may_come_in_any_order() -> None:
    assert closed_trades(reversed(LIFE)) == closed_trades(LIFE)


def test_a_trade_whose_opening_was_not_seen_is_not_counted() -> None:
    # History starts at v2 (older events are gone): trip 1's start is unknown.
    trades = closed_trades(LIFE[1:])

    assert [trade.pnl for trade in trades] == [D("-10.19"), D("19.66")]


def test_a_missing_version_merges_two_trips_but_keeps_their_sum() -> None:
    without_the_flat_point = [s for s in LIFE if s.version != 4]

    trades = closed_trades(without_the_flat_point)

    assert [trade.pnl for trade in trades] == [D("9.57") + D("-10.19"), D("19.66")]


def test_positions_are_apart() -> None:
    other = PositionKey("main", "grid", "paper", "ETH/USDT")
    interleaved = [*LIFE[:4], step(1, "5", "-1", "1", key=other), step(2, "0", "4", "2", key=other)]

    pnl_by_symbol = {(t.key.symbol, t.pnl) for t in closed_trades(interleaved)}

    assert pnl_by_symbol == {("BTC/USDT", D("9.57")), ("ETH/USDT", D("4"))}


@given(
    st.lists(
        st.tuples(
            st.integers(min_value=-5, max_value=5).filter(bool),
            st.decimals(min_value=-1000, max_value=1000, places=2),
            st.decimals(min_value=0, max_value=5, places=2),
        ),
        min_size=1,
        max_size=30,
    )
)
# A reversal whose fee does not split evenly (a third of 0.01 closes, two thirds open).
@example(fills=[(1, D("0"), D("0")), (-3, D("5"), D("0.01"))])
def test_trips_of_a_position_that_ends_flat_add_up_to_its_realised_pnl(
    fills: list[tuple[int, Decimal, Decimal]],
) -> None:
    """Whatever the fills (each moves the quantity), the trips add up once the position is flat."""
    held, fees = 0, D(0)
    steps = []
    for version, (change, realised, fee) in enumerate(fills, start=1):
        held, fees = held + change, fees + fee
        steps.append(step(version, str(held), str(realised), str(fees)))
    if held:
        steps.append(step(len(steps) + 1, "0", "12.34", str(fees)))

    assert sum(t.pnl for t in closed_trades(steps)) == steps[-1].realised_pnl


# -- the statistics of a known trade list --------------------------------------------------------

KNOWN = [D(100), D(-30), D(-50), D(20), D(-60), D(200)]


def test_performance_of_a_known_trade_list() -> None:
    stats = performance(KNOWN)

    assert (stats.trades, stats.wins, stats.losses) == (6, 3, 3)
    assert stats.realised_pnl == D(180)
    assert stats.win_rate == D("0.5")
    # 320 won, 140 lost.
    assert stats.profit_factor == D("2.28571429")  # 320 / 140
    assert stats.average_win == D("106.66666667")  # 320 / 3
    assert stats.average_loss == D("-46.66666667")  # -140 / 3
    assert (stats.largest_win, stats.largest_loss) == (D(200), D(-60))
    # Cumulative 100, 70, 20, 40, -20, 180: from the peak of 100 down to -20.
    assert stats.max_drawdown == D(120)


def test_no_trades_and_no_losses_leave_the_ratios_undefined() -> None:
    empty = performance([])
    winners = performance([D(5), D(7)])

    assert (empty.trades, empty.win_rate, empty.profit_factor, empty.largest_win) == (
        0,
        None,
        None,
        None,
    )
    assert empty.max_drawdown == D(0)
    assert (winners.win_rate, winners.profit_factor, winners.average_loss) == (D(1), None, None)


def test_a_drawdown_from_the_start_counts_from_zero() -> None:
    assert max_drawdown([D(-10), D(-5), D(30), D(-2)]) == D(15)


def test_sharpe_and_sortino_of_known_daily_pnl() -> None:
    daily = [D(15), D(-5), D(15), D(-5), D(5)]
    # mean 5; deviations ±10 and 0: sample variance 400 / 4 = 100, deviation 10.
    # downside: (-5)² twice over 5 days = 10, deviation √10.
    annual = D(365).sqrt()

    assert sharpe_ratio(daily) == (D(5) / D(10) * annual).quantize(D("1e-8"))
    assert sortino_ratio(daily) == (D(5) / D(10).sqrt() * annual).quantize(D("1e-8"))
    assert sharpe_ratio(daily) == D("9.55248659")  # 0.5 * √365


def test_ratios_need_two_days_variation_and_a_losing_day() -> None:
    assert sharpe_ratio([D(10)]) is None
    assert sharpe_ratio([D(10), D(10)]) is None
    assert sortino_ratio([D(10), D(20)]) is None


# -- the report ------------------------------------------------------------------------------------


def test_the_window_counts_days_from_the_first_activity() -> None:
    window = ReportWindow(DAY, lookback_days=30)

    assert window.period_start == datetime(2024, 12, 17, tzinfo=UTC)
    assert window.days_since(datetime(2025, 1, 13, 9, tzinfo=UTC)) == [
        date(2025, 1, 13),
        date(2025, 1, 14),
        date(2025, 1, 15),
    ]
    assert len(window.days_since(datetime(2020, 1, 1, tzinfo=UTC))) == 30


def test_the_report_has_a_section_per_strategy_and_the_accounts_total() -> None:
    scalp = PositionKey("main", "scalp", "paper", "ETH/USDT")
    yesterday = NOON - timedelta(days=1)
    steps = [
        *(step(s.version, str(s.quantity), str(s.realised_pnl), str(s.fees)) for s in LIFE),
        step(1, "1", "-1", "1", at=yesterday, key=scalp),
        step(2, "0", "-41", "2", at=yesterday, key=scalp),
    ]
    active = {GRID: NOON, scalp: yesterday}

    report = daily_report(ReportWindow(DAY, 30), closed_trades(steps), active)

    grid, scalp_section, total = report.sections
    assert (grid.strategy, scalp_section.strategy, total.strategy) == ("grid", "scalp", None)
    assert {s.currency for s in report.sections} == {"USDT"}
    assert grid.day.trades == 3 and scalp_section.day.trades == 0
    assert total.period.realised_pnl == D("19.04") + D("-41")
    # Two days of P&L for the account: -41, then 19.04.
    assert total.sharpe == sharpe_ratio([D(-41), D("19.04")])
    assert [curve.points[-1][1] for curve in report.curves] == [D("19.04"), D(-41), D("-21.96")]
    assert report.text.startswith("End of day 2025-01-15 (UTC)\nmain · grid · USDT\n")


def test_a_section_reads_well_on_a_phone() -> None:
    report = daily_report(ReportWindow(DAY, 30), closed_trades(LIFE), {GRID: NOON})

    assert report.body == (
        "main · grid · USDT\n"
        "Today: 3 trades · P&L +19.04\n"
        "Win rate 66.7% · profit factor 2.87\n"  # 29.23 won / 10.19 lost
        "Wins 2: avg +14.62 · largest +19.66\n"
        "Losses 1: avg -10.19 · largest -10.19\n"
        "Max drawdown 10.19\n"
        "Last 30 days: 3 trades · P&L +19.04\n"
        "Max drawdown 10.19 · Sharpe n/a · Sortino n/a"
    )


def test_amounts_are_rounded_for_reading() -> None:
    assert money(D("1234.5"), signed=True) == "+1,234.50"
    assert money(D("-0.00012345678")) == "-0.00012346"
    assert money(D(0), signed=True) == "0.00"
    assert percent(D("0.75")) == "75%"


def test_derivatives_report_in_their_settlement_currency() -> None:
    assert PositionKey("a", "s", "v", "BTC/USDT:USDT").currency == "USDT"
    assert PositionKey("a", "s", "v", "BTC/USD:BTC").currency == "BTC"
    assert PositionKey("a", "s", "v", "ETH/BTC").currency == "BTC"
