"""The invariants, each computed from the evidence alone (pure: no I/O, no clock).

Each check says how many things it looked at and lists every violation in words a person can
act on; a run passes when no check has any.
"""

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from ordo.bench.chaos.evidence import Evidence
from ordo.contracts.enums import Intent, SignalOutcome
from ordo.contracts.orders import OrderView
from ordo.contracts.subjects import Subject
from ordo.execution.venues.paper import VENUE_NAME as PAPER_VENUE

ZERO = Decimal(0)
# The dead letters of an approval whose attempts ran out: on a venue that did not answer, that
# the breaker kept execution from calling, whose answer is unknown, or on redeliveries after
# crashes (the kit's PoisonMessage when a message came more often than max_deliver).
GAVE_UP_ERRORS = (
    "VenueUnavailable",
    "VenueTimeout",
    "CircuitOpenError",
    "OutcomeUnknown",
    "PoisonMessage: delivered",
)
# What the OMS made of a signal, split by whether it made orders: a signal it planned has orders
# (the risk gate may have denied them all); one it could not plan, refused, or left queued or
# dequeued in the execution pool has none, and that is its terminal outcome.
WITH_ORDERS = frozenset({SignalOutcome.PLANNED, SignalOutcome.DENIED})
WITHOUT_ORDERS = frozenset(SignalOutcome) - WITH_ORDERS


@dataclass(frozen=True)
class Violation:
    text: str
    order_ids: frozenset[str] = frozenset()  # the orders it concerns, where it is known

    def __str__(self) -> str:
        return self.text


@dataclass
class Check:
    name: str
    checked: int = 0
    violations: list[Violation] = field(default_factory=list)

    def add(self, text: str, *order_ids: str) -> None:
        self.violations.append(Violation(text, frozenset(order_ids)))

    @property
    def passed(self) -> bool:
        return not self.violations


def most_orders(intent: Intent | None) -> int:
    """How many orders one signal may become: a reverse closes, then opens; the rest trade once."""
    return 2 if intent is Intent.REVERSE else 1


def one_terminal_outcome(evidence: Evidence) -> tuple[Check, Counter[str]]:
    """Every accepted signal reached exactly one terminal outcome: its order(s) all finished
    (filled, rejected, denied, canceled, expired), or the OMS recorded why it planned nothing."""
    check = Check("every accepted signal reached exactly one terminal outcome")
    outcomes: Counter[str] = Counter()
    for signal_id in sorted(evidence.accepted_ids):
        check.checked += 1
        problems = _outcome_problems(evidence, signal_id)
        if problems:
            outcomes["violated"] += 1
            for problem, order_ids in problems:
                check.add(f"signal {signal_id}: {problem}", *order_ids)
        else:
            outcomes[_outcome_of(evidence, signal_id)] += 1
    return check, outcomes


def _outcome_problems(evidence: Evidence, signal_id: str) -> list[tuple[str, list[str]]]:
    """What is wrong with the outcome of one signal, each with the orders it concerns."""
    problems: list[tuple[str, list[str]]] = []
    announced = evidence.announced.get(signal_id)
    if announced is None:
        problems.append(("the intake accepted it but never announced it (signal.accepted.v1)", []))
    intent = announced.signal.intent if announced is not None else None
    recorded = evidence.outcomes.get(signal_id)
    orders = evidence.orders.get(signal_id, ())
    order_ids = [order.order_id for order in orders]
    if recorded is None:
        problems.append(("lost: the OMS has no record of it", order_ids))
    elif recorded in WITHOUT_ORDERS and orders:
        text = f"recorded as {recorded.value}, yet it has {len(orders)} order(s)"
        problems.append((text, order_ids))
    elif recorded in WITH_ORDERS and not orders:
        problems.append((f"lost: {recorded.value}, but no order of it exists", []))
    if len(orders) > most_orders(intent):
        text = f"doubled: {len(orders)} orders ({', '.join(order_ids)}) for one {intent} signal"
        problems.append((text, order_ids))
    for order in orders:
        if not order.status.is_terminal:
            text = f"order {order.order_id} is still {order.status.value}: no terminal outcome"
            problems.append((text, [order.order_id]))
    return problems


def _outcome_of(evidence: Evidence, signal_id: str) -> str:
    """What became of a signal without problems: its orders' statuses, or why it has none."""
    orders = evidence.orders.get(signal_id, ())
    if not orders:
        return evidence.outcomes[signal_id].value
    return "+".join(sorted(order.status.value for order in orders))


def no_order_created_twice(evidence: Evidence) -> Check:
    """No client order id was created twice at the venue: every report of one client order id
    names one venue order, the venue filled no order beyond its quantity, and the venue holds
    exactly what the OMS holds."""
    check = Check("no client order id was submitted twice at the venue")
    venue_orders: defaultdict[str, set[str]] = defaultdict(set)
    for report in evidence.reports:
        if report.venue_order_id is not None:
            venue_orders[report.order_id].add(report.venue_order_id)
    quantities = {order.order_id: order.quantity for order in _all_orders(evidence)}
    for order_id, filled in sorted(_venue_fills(evidence).items()):
        check.checked += 1
        if len(venue_orders[order_id]) > 1:
            ids = ", ".join(sorted(venue_orders[order_id]))
            check.add(f"client order id {order_id} became venue orders {ids}", order_id)
        ordered = quantities.get(order_id)
        if ordered is not None and filled > ordered:
            text = f"order {order_id}: the venue filled {filled} of an order for {ordered}"
            check.add(text, order_id)
    for difference in _venue_position_differences(evidence, check):
        check.add(difference)
    return check


def _venue_position_differences(evidence: Evidence, check: Check) -> list[str]:
    if evidence.venue_positions is None:
        return ["the venue's snapshot could not be had: its positions were not compared"]
    oms: defaultdict[str, Decimal] = defaultdict(lambda: ZERO)
    for position in evidence.positions:
        if position.venue == PAPER_VENUE:
            oms[position.symbol] += position.quantity
    differences = []
    for symbol in sorted(oms.keys() | evidence.venue_positions.keys()):
        check.checked += 1
        venue, mine = evidence.venue_positions.get(symbol, ZERO), oms.get(symbol, ZERO)
        if venue != mine:
            differences.append(f"{symbol}: the venue holds {venue}, the OMS {mine}")
    return differences


def positions_equal_fills(evidence: Evidence) -> Check:
    """Every OMS position equals the signed sum of its orders' fills, and every order's fills
    are the ones the venue reported, each applied once."""
    check = Check("every position equals the sum of its fills")
    venue_fills = _venue_fills(evidence)
    sums: defaultdict[tuple[str, str, str, str], Decimal] = defaultdict(lambda: ZERO)
    for order in _all_orders(evidence):
        key = (order.account, order.strategy, order.venue, order.symbol)
        sums[key] += order.side.sign * order.filled_quantity
        reported = venue_fills.get(order.order_id, ZERO)
        if order.filled_quantity != reported:
            check.add(
                f"order {order.order_id}: the OMS applied {order.filled_quantity}, "
                f"the venue reported fills of {reported}",
                order.order_id,
            )
    positions = {(p.account, p.strategy, p.venue, p.symbol): p.quantity for p in evidence.positions}
    for key in sorted(sums.keys() | positions.keys()):
        check.checked += 1
        held, filled = positions.get(key, ZERO), sums.get(key, ZERO)
        if held != filled:
            check.add(f"position {'/'.join(key)} is {held}, its orders' fills sum to {filled}")
    return check


def reconciler_finds_nothing(evidence: Evidence) -> Check:
    """A reconciliation that started after the system settled compared the account, and found
    no discrepancy."""
    check = Check("the reconciler finds nothing", checked=len(evidence.runs_after))
    if not evidence.runs_after:
        after = evidence.settled_at.isoformat()
        check.add(f"no reconciliation run that started after {after} completed")
    for found in evidence.discrepancies_after:
        check.add(f"run {found.run_id}: {found.kind.value}: {found.detail}")
    return check


def dead_letters_explained(evidence: Evidence) -> Check:
    """The dead-letter stream holds only the undecodable messages the run injected, and each of
    them was dead-lettered by every service that consumes its subject."""
    check = Check("the dead-letter stream holds nothing unexplained")
    dead_lettered_by: defaultdict[bytes, set[str]] = defaultdict(set)
    for letter in evidence.dead_letters:
        check.checked += 1
        if letter.body in evidence.poison_bodies:
            dead_lettered_by[letter.body].add(letter.service)
            continue
        check.add(
            f"unexplained dead letter from {letter.service} ({letter.original_subject}, "
            f"{letter.attempts} attempts): {letter.error[:300]}",
            *letter.order_ids,
        )
    for body in sorted(evidence.stored_poisons):
        missing = evidence.poison_bodies[body] - dead_lettered_by[body]
        if missing:
            check.add(
                f"undecodable message {body[:60]!r} was not dead-lettered by "
                f"{', '.join(sorted(missing))}"
            )
    return check


def abandoned_orders(evidence: Evidence) -> set[str]:
    """The orders whose approval execution dead-lettered because its delivery attempts ran out
    on venue failures, breaker refusals or crashes.

    On the approval's last attempt execution settles each order itself (it looks it up, and
    reports what the venue holds or rejects what it does not); only an order it could not even
    look up is dead-lettered, and stays SUBMITTED at the OMS until execution's give-up
    (``give_up_pending_seconds``), which may come after the run. The run names such orders so that
    a person can tell their violations from anything else."""
    return {
        order_id
        for letter in evidence.dead_letters
        if letter.service == "execution"
        and letter.original_subject == str(Subject.RISK_APPROVED)
        and letter.error.startswith(GAVE_UP_ERRORS)
        for order_id in letter.order_ids
    }


def processes_came_back(failed_restarts: Iterable[str], restarts: int) -> Check:
    """Every process killed or restarted was ready again (a crash at start-up is a finding)."""
    check = Check("every killed process came back", checked=restarts)
    for failure in failed_restarts:
        check.add(failure)
    return check


def _all_orders(evidence: Evidence) -> list[OrderView]:
    return [order for orders in evidence.orders.values() for order in orders]


def _venue_fills(evidence: Evidence) -> dict[str, Decimal]:
    """Client order id → the quantity the venue reported filled, each fill counted once."""
    fills: defaultdict[str, dict[str, Decimal]] = defaultdict(dict)
    for report in evidence.reports:
        if report.fill is not None:
            fills[report.order_id][report.fill.fill_id] = report.fill.quantity
    reported = {order_id: sum(by_id.values(), ZERO) for order_id, by_id in fills.items()}
    for order_id in {report.order_id for report in evidence.reports}:
        reported.setdefault(order_id, ZERO)
    return reported
