"""Each service's /metrics after signals flow through the whole engine (the series the Grafana
dashboard in deploy/grafana draws)."""

import json
import uuid
from pathlib import Path

import httpx
import promql_parser
from integration_support import Operator, tradingview_alert
from prometheus_client.parser import text_string_to_metric_families

from ordo.cli.stack import Stack
from ordo.contracts.enums import OrderStatus
from ordo.contracts.subjects import ROUTES, STREAM_OF_SUBJECT, Service, Subject, durable_name
from ordo.kit.testing import eventually

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "ordo.json"
SERVICES = [s for s in Service if s is not Service.OPERATOR]

Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def exposition(stack: Stack, service: Service) -> str:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"{stack.processes[service].url}/metrics")
    response.raise_for_status()
    return response.text


async def scrape(stack: Stack, service: Service) -> Series:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(await exposition(stack, service))
        for sample in family.samples
    }


def value(series: Series, name: str, **labels: str) -> float | None:
    """The one series ``name`` whose labels include ``labels``, or None."""
    found = [v for (n, ls), v in series.items() if n == name and set(labels.items()) <= ls]
    assert len(found) <= 1, f"{name}{labels} matches {len(found)} series"
    return found[0] if found else None


async def has_status(operator: Operator, signal_id: str, status: OrderStatus) -> bool:
    orders = await operator.orders(signal_id=signal_id)
    return bool(orders) and orders[0].status is status


async def test_every_service_exports_the_flow_its_lag_and_its_own_numbers(
    operator: Operator, stack: Stack
) -> None:
    filled = await operator.post_alert(**tradingview_alert(f"m-{uuid.uuid4().hex[:8]}"))
    denied = await operator.post_alert(
        **tradingview_alert(f"m-{uuid.uuid4().hex[:8]}", contracts="5")  # over the notional limit
    )
    await eventually(lambda: has_status(operator, filled.json()["signal_id"], OrderStatus.FILLED))
    await eventually(lambda: has_status(operator, denied.json()["signal_id"], OrderStatus.DENIED))

    # Handled messages and handler latency, per subject, in every consuming service.
    for service in Service:
        if service is Service.OPERATOR:
            continue
        series = await scrape(stack, service)
        for subject in ROUTES[service].consumes:
            consumer = {
                "stream": STREAM_OF_SUBJECT[subject],
                "consumer": durable_name(service, subject),
            }
            assert value(series, "ordo_consumer_pending_messages", **consumer) is not None
            assert value(series, "ordo_consumer_ack_pending_messages", **consumer) is not None
        assert value(series, "ordo_outbox_backlog") is not None, service

    # Every subject this flow drives through the OMS (the venue's quotes arrive every second);
    # rebalances and trading-state changes have tests of their own.
    order = await scrape(stack, Service.ORDER)
    for subject in (
        Subject.SIGNAL_ACCEPTED,
        Subject.RISK_APPROVED,
        Subject.RISK_DENIED,
        Subject.EXEC_REPORT,
        Subject.MARKET_QUOTE,
    ):
        handler = {"app_name": "ordo-order", "handler": str(subject)}
        assert (value(order, "ordo_received_messages_total", **handler) or 0) >= 1, subject
        latency = "ordo_received_processed_messages_duration_seconds_count"
        assert (value(order, latency, **handler) or 0) >= 1, subject
    assert (value(order, "ordo_orders", status="filled") or 0) >= 1
    assert (value(order, "ordo_orders", status="denied") or 0) >= 1
    assert value(order, "ordo_orders", status="expired") is not None  # every status, even at 0

    risk = await scrape(stack, Service.RISK)
    assert (value(risk, "ordo_risk_denials_total", reason="MAX_NOTIONAL_PER_ORDER") or 0) >= 1
    assert value(risk, "ordo_risk_denials_total", reason="TRADING_HALTED") is not None

    signal = await scrape(stack, Service.SIGNAL)
    accepted = {"destination": str(Subject.SIGNAL_ACCEPTED), "status": "success"}
    assert (value(signal, "ordo_published_messages_total", **accepted) or 0) >= 2

    execution = await scrape(stack, Service.EXECUTION)
    breakers = [dict(ls)["breaker"] for (n, ls) in execution if n == "ordo_breaker_state"]
    assert any(b.startswith("venue:paper:") for b in breakers), breakers


async def test_a_message_that_never_decodes_counts_as_dead_lettered(
    operator: Operator, stack: Stack
) -> None:
    dead_lettered = {"subject": str(Subject.SIGNAL_ACCEPTED), "outcome": "dead_letter"}
    before = value(
        await scrape(stack, Service.ORDER), "ordo_messages_failed_total", **dead_lettered
    )

    await operator.admin_js.publish(str(Subject.SIGNAL_ACCEPTED), b'{"not": "a signal"}')

    async def counted() -> float | None:
        after = value(
            await scrape(stack, Service.ORDER), "ordo_messages_failed_total", **dead_lettered
        )
        return after if after is not None and after > (before or 0) else None

    assert await eventually(counted, what="the dead letter counted") == (before or 0) + 1


# The series names a metric family of each type exposes (a family with no sample yet is still
# announced, by its HELP and TYPE lines).
SAMPLE_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
}
# Series and labels Prometheus makes itself for each target (deploy/prometheus/prometheus.yml).
PROMETHEUS_SERIES = {"up"}
TARGET_LABELS = {"service", "job", "instance"}
GRAFANA_MACROS = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}


Exported = dict[str, set[str] | None]


async def exported_series(stack: Stack) -> Exported:
    """Every series name the services export → the labels its samples carry (None: no sample
    yet, such as the failures of a run where nothing failed)."""
    series: Exported = {}
    for service in SERVICES:
        for family in text_string_to_metric_families(await exposition(stack, service)):
            for suffix in SAMPLE_SUFFIXES[family.type]:
                series.setdefault(family.name + suffix, None)
            for sample in family.samples:
                series[sample.name] = (series.get(sample.name) or set()) | set(sample.labels)
    return series


def dashboard_queries() -> list[tuple[str, promql_parser.Expr]]:
    found = []
    top = json.loads(DASHBOARD.read_text())["panels"]
    for panel in [*top, *(inner for row in top for inner in row.get("panels", []))]:
        for target in panel.get("targets", []):
            expression = target["expr"]
            for macro, value in GRAFANA_MACROS.items():
                expression = expression.replace(macro, value)
            found.append((panel["title"], promql_parser.parse(expression)))
    return found


def nodes(expression: promql_parser.Expr) -> list[promql_parser.Expr]:
    found: list[promql_parser.Expr] = []
    promql_parser.walk(expression, found.append)
    return found


def query_problems(title: str, query: promql_parser.Expr, series: Exported) -> list[str]:
    """Series the query names that no service exports; labels it names that they do not carry
    (checked where the services have samples to show their labels)."""
    problems = []
    for node in nodes(query):
        if isinstance(node, promql_parser.VectorSelector) and node.name not in PROMETHEUS_SERIES:
            if node.name not in series:
                problems.append(f"{title}: no service exports {node.name}")
                continue
            labels = series[node.name]
            for matcher in node.matchers.matchers:
                if labels is not None and matcher.name not in labels | TARGET_LABELS:
                    problems.append(f"{title}: {node.name} has no label {matcher.name}")
        if isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            selected = [n for n in nodes(node.expr) if isinstance(n, promql_parser.VectorSelector)]
            known = [series.get(n.name) for n in selected if n.name not in PROMETHEUS_SERIES]
            if any(labels is None for labels in known):
                continue  # a series with no sample yet: its labels are unknown
            carried = TARGET_LABELS.union(*(labels for labels in known if labels is not None))
            for label in set(node.modifier.labels) - carried:
                problems.append(f"{title}: no label {label} to aggregate by")
    return problems


async def test_the_grafana_dashboard_queries_only_series_the_services_export(
    operator: Operator, stack: Stack
) -> None:
    filled = await operator.post_alert(**tradingview_alert(f"m-{uuid.uuid4().hex[:8]}"))
    await eventually(lambda: has_status(operator, filled.json()["signal_id"], OrderStatus.FILLED))
    series = await exported_series(stack)

    queries = dashboard_queries()
    assert len(queries) > 10
    assert [problem for title, q in queries for problem in query_problems(title, q, series)] == []
