"""Subjects, streams, routes and permissions: the one place where a subject is spelled.

Everything that needs to know who publishes or consumes what (the broker factory, the embedded
stack's NATS users, the deployment manifests) derives it from the tables below.
"""

from dataclasses import dataclass, field
from enum import StrEnum

from ordo.contracts.envelope import Message
from ordo.contracts.execution import (
    ExecutionReport,
    RequestVenueSnapshot,
    VenueSnapshot,
    VenueStatusChanged,
)
from ordo.contracts.groups import GroupsView, QueryGroups, QueryQueue, QueueView
from ordo.contracts.market import MarketQuote
from ordo.contracts.orders import (
    CancelOrder,
    OrderProposed,
    OrderUpdated,
    PositionChanged,
    RebalancePortfolio,
)
from ordo.contracts.queries import (
    OrdersView,
    PositionsView,
    QueryOrders,
    QueryPositions,
    QueryRebalances,
    QuerySignals,
    RebalancesView,
    SignalsView,
)
from ordo.contracts.reconciliation import DiscrepancyFound, ReconciliationCompleted
from ordo.contracts.reports import DailyReportView, QueryDailyReport
from ordo.contracts.risk import (
    OrderApproved,
    OrderDenied,
    QueryRiskAudit,
    QueryRiskDecisions,
    QueryRiskLimits,
    RiskAuditView,
    RiskDecisionsView,
    RiskLimitsView,
    SetRiskLimits,
    SetTradingState,
    TradingStateChanged,
)
from ordo.contracts.signals import SignalAccepted, SignalRejected, SubmitSignal


class Service(StrEnum):
    SIGNAL = "signal"
    ORDER = "order"
    RISK = "risk"
    EXECUTION = "execution"
    RECONCILER = "reconciler"
    NOTIFIER = "notifier"
    OPERATOR = "operator"  # the `ordo` CLI: a person, not a service, but it has a NATS user


class Subject(StrEnum):
    SIGNAL_SUBMIT = "signal.submit.v1"
    SIGNAL_ACCEPTED = "signal.accepted.v1"
    SIGNAL_REJECTED = "signal.rejected.v1"
    ORDER_PROPOSED = "order.proposed.v1"
    ORDER_CANCEL = "order.cancel.v1"
    ORDER_UPDATED = "order.updated.v1"
    POSITION_CHANGED = "position.changed.v1"
    ORDER_REBALANCE = "order.rebalance.v1"
    RISK_APPROVED = "risk.approved.v1"
    RISK_DENIED = "risk.denied.v1"
    RISK_STATE = "risk.state.v1"
    EXEC_REPORT = "exec.report.v1"
    EXEC_VENUE = "exec.venue.v1"
    MARKET_QUOTE = "market.quote.v1"
    RECON_RUN = "recon.run.v1"
    RECON_DISCREPANCY = "recon.discrepancy.v1"
    OPS_SET_TRADING_STATE = "ops.risk.set_state.v1"
    OPS_SET_RISK_LIMITS = "ops.risk.set_limits.v1"
    # Request/reply over core NATS: never captured by a stream (a stream would answer the request
    # with its publish acknowledgement instead of the service's reply).
    EXEC_SNAPSHOT = "exec.snapshot.v1"
    QUERY_ORDERS = "query.orders.v1"
    QUERY_POSITIONS = "query.positions.v1"
    QUERY_GROUPS = "query.groups.v1"
    QUERY_QUEUE = "query.queue.v1"
    QUERY_SIGNALS = "query.signals.v1"
    QUERY_REBALANCES = "query.rebalances.v1"
    QUERY_REPORT = "query.report.v1"
    QUERY_RISK_DECISIONS = "query.risk.decisions.v1"
    QUERY_RISK_AUDIT = "query.risk.audit.v1"
    QUERY_RISK_LIMITS = "query.risk.limits.v1"
    # Every dead letter, whichever service gave up on it (raw messages, headers say why).
    DEAD_LETTERS = "dlq.>"


DEAD_LETTER_PREFIX = "dlq"
DEAD_LETTER_STREAM = "DEADLETTER"


def dead_letter_subject(service: Service, subject: str) -> str:
    """Where a message goes after its last delivery attempt failed: ``dlq.<service>.<subject>``."""
    return f"{DEAD_LETTER_PREFIX}.{service}.{subject}"


@dataclass(frozen=True)
class StreamSpec:
    name: str
    subjects: tuple[str, ...]
    duplicate_window_seconds: float = 600.0
    max_age_seconds: float = 7 * 24 * 3600.0
    description: str = ""


STREAMS: tuple[StreamSpec, ...] = (
    StreamSpec(
        "SIGNALS",
        (Subject.SIGNAL_SUBMIT, Subject.SIGNAL_ACCEPTED, Subject.SIGNAL_REJECTED),
        description="Signals submitted, accepted and rejected",
    ),
    StreamSpec(
        "ORDERS",
        (
            Subject.ORDER_PROPOSED,
            Subject.ORDER_CANCEL,
            Subject.ORDER_UPDATED,
            Subject.POSITION_CHANGED,
            Subject.ORDER_REBALANCE,
        ),
        description="The OMS's proposals, cancels, order and position changes; rebalances",
    ),
    StreamSpec(
        "RISK",
        (Subject.RISK_APPROVED, Subject.RISK_DENIED, Subject.RISK_STATE),
        description="Risk decisions and trading state",
    ),
    StreamSpec(
        "EXEC",
        (Subject.EXEC_REPORT, Subject.EXEC_VENUE),
        description="Execution reports and venue health",
    ),
    StreamSpec(
        "MARKET",
        (Subject.MARKET_QUOTE,),
        # Quotes are worth something for minutes: a consumer that was down catches up on the last
        # hour, not on a week of stale prices.
        duplicate_window_seconds=60.0,
        max_age_seconds=3600.0,
        description="Quotes read from the venues",
    ),
    StreamSpec(
        "RECON",
        (Subject.RECON_RUN, Subject.RECON_DISCREPANCY),
        description="Reconciliation runs and discrepancies",
    ),
    StreamSpec(
        "OPS",
        (Subject.OPS_SET_TRADING_STATE, Subject.OPS_SET_RISK_LIMITS),
        description="Operator commands",
    ),
    StreamSpec(
        DEAD_LETTER_STREAM,
        (f"{DEAD_LETTER_PREFIX}.>",),
        max_age_seconds=30 * 24 * 3600.0,
        description="Messages whose last delivery attempt failed",
    ),
)

STREAM_OF_SUBJECT: dict[str, str] = {s: spec.name for spec in STREAMS for s in spec.subjects}

MESSAGE_SUBJECTS: dict[type[Message], Subject] = {
    SubmitSignal: Subject.SIGNAL_SUBMIT,
    SignalAccepted: Subject.SIGNAL_ACCEPTED,
    SignalRejected: Subject.SIGNAL_REJECTED,
    OrderProposed: Subject.ORDER_PROPOSED,
    CancelOrder: Subject.ORDER_CANCEL,
    OrderUpdated: Subject.ORDER_UPDATED,
    PositionChanged: Subject.POSITION_CHANGED,
    RebalancePortfolio: Subject.ORDER_REBALANCE,
    OrderApproved: Subject.RISK_APPROVED,
    OrderDenied: Subject.RISK_DENIED,
    TradingStateChanged: Subject.RISK_STATE,
    ExecutionReport: Subject.EXEC_REPORT,
    VenueStatusChanged: Subject.EXEC_VENUE,
    MarketQuote: Subject.MARKET_QUOTE,
    ReconciliationCompleted: Subject.RECON_RUN,
    DiscrepancyFound: Subject.RECON_DISCREPANCY,
    SetTradingState: Subject.OPS_SET_TRADING_STATE,
    SetRiskLimits: Subject.OPS_SET_RISK_LIMITS,
    RequestVenueSnapshot: Subject.EXEC_SNAPSHOT,
    QueryOrders: Subject.QUERY_ORDERS,
    QueryPositions: Subject.QUERY_POSITIONS,
    QueryGroups: Subject.QUERY_GROUPS,
    QueryQueue: Subject.QUERY_QUEUE,
    QuerySignals: Subject.QUERY_SIGNALS,
    QueryRebalances: Subject.QUERY_REBALANCES,
    QueryDailyReport: Subject.QUERY_REPORT,
    QueryRiskDecisions: Subject.QUERY_RISK_DECISIONS,
    QueryRiskAudit: Subject.QUERY_RISK_AUDIT,
    QueryRiskLimits: Subject.QUERY_RISK_LIMITS,
}

REPLIES: dict[type[Message], type[Message]] = {
    RequestVenueSnapshot: VenueSnapshot,
    QueryOrders: OrdersView,
    QueryPositions: PositionsView,
    QueryGroups: GroupsView,
    QueryQueue: QueueView,
    QuerySignals: SignalsView,
    QueryRebalances: RebalancesView,
    QueryDailyReport: DailyReportView,
    QueryRiskDecisions: RiskDecisionsView,
    QueryRiskAudit: RiskAuditView,
    QueryRiskLimits: RiskLimitsView,
}
"""Request message → the reply message its responder sends back."""

ALL_MESSAGES: tuple[type[Message], ...] = (
    *MESSAGE_SUBJECTS,
    VenueSnapshot,
    OrdersView,
    PositionsView,
    SignalsView,
    RebalancesView,
    GroupsView,
    QueueView,
    DailyReportView,
    RiskDecisionsView,
    RiskAuditView,
    RiskLimitsView,
)


def subject_of(message: Message | type[Message]) -> Subject:
    cls = message if isinstance(message, type) else type(message)
    return MESSAGE_SUBJECTS[cls]


@dataclass(frozen=True)
class Consumption:
    """A durable consumer of one subject by one service (shared by all its replicas)."""

    subject: Subject
    durable: str

    @property
    def stream(self) -> str:
        return STREAM_OF_SUBJECT[self.subject]


@dataclass(frozen=True)
class Routes:
    publishes: tuple[Subject, ...] = ()
    consumes: tuple[Subject, ...] = ()
    requests: tuple[Subject, ...] = ()  # request/reply subjects this service asks
    replies: tuple[Subject, ...] = ()  # request/reply subjects this service answers
    extra_publish: tuple[str, ...] = field(default=())

    def consumption(self, service: Service, subject: Subject) -> Consumption:
        if subject not in self.consumes:
            raise KeyError(f"{service} does not consume {subject}")
        return Consumption(subject, durable_name(service, subject))


def durable_name(service: Service, subject: str) -> str:
    token = subject.replace(".", "_").replace(">", "all").replace("*", "any")
    return f"{service}__{token}"


ROUTES: dict[Service, Routes] = {
    Service.SIGNAL: Routes(
        publishes=(Subject.SIGNAL_ACCEPTED, Subject.SIGNAL_REJECTED),
        consumes=(Subject.SIGNAL_SUBMIT,),
    ),
    Service.ORDER: Routes(
        publishes=(
            Subject.ORDER_PROPOSED,
            Subject.ORDER_CANCEL,
            Subject.ORDER_UPDATED,
            Subject.POSITION_CHANGED,
        ),
        consumes=(
            Subject.SIGNAL_ACCEPTED,
            Subject.RISK_APPROVED,
            Subject.RISK_DENIED,
            Subject.EXEC_REPORT,
            Subject.MARKET_QUOTE,
            Subject.ORDER_REBALANCE,
            Subject.RISK_STATE,
        ),
        replies=(
            Subject.QUERY_ORDERS,
            Subject.QUERY_POSITIONS,
            Subject.QUERY_SIGNALS,
            Subject.QUERY_REBALANCES,
            Subject.QUERY_GROUPS,
            Subject.QUERY_QUEUE,
        ),
    ),
    Service.RISK: Routes(
        publishes=(
            Subject.RISK_APPROVED,
            Subject.RISK_DENIED,
            Subject.RISK_STATE,
            # The loser/winner offset closes positions through the signal service and the OMS.
            Subject.SIGNAL_SUBMIT,
        ),
        consumes=(
            Subject.ORDER_PROPOSED,
            Subject.ORDER_UPDATED,
            Subject.POSITION_CHANGED,
            Subject.OPS_SET_TRADING_STATE,
            Subject.MARKET_QUOTE,
            Subject.OPS_SET_RISK_LIMITS,
            Subject.RECON_DISCREPANCY,
        ),
        # At start-up, the OMS's positions: the projection may lack some (see risk's app.py).
        requests=(Subject.QUERY_POSITIONS,),
        replies=(
            Subject.QUERY_RISK_DECISIONS,
            Subject.QUERY_RISK_AUDIT,
            Subject.QUERY_RISK_LIMITS,
        ),
    ),
    Service.EXECUTION: Routes(
        publishes=(Subject.EXEC_REPORT, Subject.EXEC_VENUE, Subject.MARKET_QUOTE),
        consumes=(Subject.RISK_APPROVED, Subject.ORDER_CANCEL),
        replies=(Subject.EXEC_SNAPSHOT,),
    ),
    Service.RECONCILER: Routes(
        publishes=(Subject.RECON_RUN, Subject.RECON_DISCREPANCY),
        consumes=(),
        requests=(Subject.EXEC_SNAPSHOT, Subject.QUERY_POSITIONS),
    ),
    Service.NOTIFIER: Routes(
        consumes=(
            Subject.DEAD_LETTERS,
            Subject.EXEC_REPORT,
            Subject.RISK_DENIED,
            Subject.RISK_STATE,
            Subject.EXEC_VENUE,
            Subject.RECON_DISCREPANCY,
            Subject.POSITION_CHANGED,
        ),
        replies=(Subject.QUERY_REPORT,),
    ),
    Service.OPERATOR: Routes(
        publishes=(
            Subject.SIGNAL_SUBMIT,
            Subject.OPS_SET_TRADING_STATE,
            Subject.ORDER_REBALANCE,
            Subject.OPS_SET_RISK_LIMITS,
        ),
        requests=(
            Subject.QUERY_ORDERS,
            Subject.QUERY_POSITIONS,
            Subject.QUERY_SIGNALS,
            Subject.QUERY_REBALANCES,
            Subject.EXEC_SNAPSHOT,
            Subject.QUERY_REPORT,
            Subject.QUERY_RISK_DECISIONS,
            Subject.QUERY_RISK_AUDIT,
            Subject.QUERY_RISK_LIMITS,
            Subject.QUERY_GROUPS,
            Subject.QUERY_QUEUE,
        ),
    ),
}


@dataclass(frozen=True)
class Permissions:
    publish_allow: tuple[str, ...]
    publish_deny: tuple[str, ...]
    subscribe_allow: tuple[str, ...]


# JetStream's API: services may look streams up, create/update them and run their consumers, but
# never delete or purge a stream, nor delete a stored message.
_JS_API = (
    "$JS.API.INFO",
    "$JS.API.STREAM.INFO.>",
    "$JS.API.STREAM.NAMES",
    "$JS.API.STREAM.LIST",
    "$JS.API.STREAM.CREATE.>",
    "$JS.API.STREAM.UPDATE.>",
    "$JS.API.CONSUMER.>",
    "$JS.ACK.>",
    "$JS.FC.>",
)
_JS_DENY = ("$JS.API.STREAM.DELETE.>", "$JS.API.STREAM.PURGE.>", "$JS.API.STREAM.MSG.DELETE.>")


def permissions(service: Service) -> Permissions:
    """The NATS permissions of a service's user: exactly its own subjects, and nothing else."""
    routes = ROUTES[service]
    publish = [*routes.publishes, *routes.requests, *_JS_API, "_INBOX.>", *routes.extra_publish]
    if routes.consumes:
        # The last delivery attempt of a consumed message goes to the dead-letter stream.
        publish.append(f"{DEAD_LETTER_PREFIX}.{service}.>")
    subscribe = ["_INBOX.>", *routes.replies]
    return Permissions(
        publish_allow=tuple(str(s) for s in publish),
        publish_deny=_JS_DENY,
        subscribe_allow=tuple(str(s) for s in subscribe),
    )
