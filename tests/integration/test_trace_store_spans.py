"""Store transactions are child spans in a signal's trace, in each service that handles it."""

import uuid
from pathlib import Path

from integration_support import Operator, tradingview_alert

from ordo.cli.spans import find_traces, read_span_files
from ordo.cli.stack import Stack
from ordo.contracts.enums import OrderStatus
from ordo.kit.testing import eventually

SERVICES_WITH_A_STORE = {"ordo-signal", "ordo-order", "ordo-risk", "ordo-execution"}


async def test_each_service_s_store_transactions_hang_under_the_signal_s_trace(
    operator: Operator, stack: Stack
) -> None:
    response = await operator.post_alert(**tradingview_alert(f"st-{uuid.uuid4().hex[:8]}"))
    signal_id = response.json()["signal_id"]

    async def filled() -> bool:
        orders = await operator.orders(signal_id=signal_id)
        return bool(orders) and orders[0].status is OrderStatus.FILLED

    await eventually(filled, what="the order FILLED")

    async def transactions() -> list[object] | None:
        traces = find_traces(read_span_files(Path(stack.var_dir) / "spans").spans, signal_id)
        if len(traces) != 1:
            return None
        rows = [row for row in traces[0].rows if row.span.name == "store.transaction"]
        services = {row.span.service for row in rows}
        # A parent ends (and is exported) after its children: wait for every one of them.
        under_parents = all(row.depth > 0 for row in rows)
        return rows if services >= SERVICES_WITH_A_STORE and under_parents else None

    rows = await eventually(
        transactions, timeout=20, what="store spans in four services, each under its parent"
    )
    assert all(row.span.attributes["db.system"] == "sqlite" for row in rows)
