"""One trace follows a signal through every service it touches."""

import json
import uuid
from pathlib import Path

from integration_support import Operator, tradingview_alert

from ordo.cli.stack import Stack
from ordo.contracts.enums import OrderStatus
from ordo.kit.testing import eventually


async def test_one_trace_spans_signal_order_risk_and_execution(
    operator: Operator, stack: Stack
) -> None:
    response = await operator.post_alert(**tradingview_alert(f"t-{uuid.uuid4().hex[:8]}"))
    signal_id = response.json()["signal_id"]

    async def filled() -> object:
        orders = await operator.orders(signal_id=signal_id)
        return orders and orders[0].status is OrderStatus.FILLED

    await eventually(filled)
    wanted = {"ordo-signal", "ordo-order", "ordo-risk", "ordo-execution"}

    async def services_in_trace() -> set[str] | None:
        spans = _spans(Path(stack.var_dir) / "spans")
        trace_ids = {
            s["context"]["trace_id"]
            for s in spans
            if signal_id in map(str, s.get("attributes", {}).values())
        }
        if len(trace_ids) != 1:
            return None
        services = {
            s["resource"]["attributes"]["service.name"]
            for s in spans
            if s["context"]["trace_id"] in trace_ids
        }
        return services if wanted <= services else None

    await eventually(services_in_trace, timeout=20, what=f"one trace across {sorted(wanted)}")


def _spans(directory: Path) -> list[dict[str, object]]:
    spans = []
    for path in directory.glob("*.jsonl"):
        for line in path.read_text().splitlines():
            if line.strip():
                spans.append(json.loads(line))
    return spans
