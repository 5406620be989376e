"""Services killed with SIGKILL in the middle of a flow: nothing lost, nothing done twice."""

import asyncio
import uuid
from decimal import Decimal

from integration_support import Operator, tradingview_alert

from ordo.cli.stack import Stack
from ordo.contracts.enums import OrderStatus
from ordo.contracts.envelope import new_message_id
from ordo.contracts.execution import RequestVenueSnapshot, VenueSnapshot
from ordo.contracts.subjects import Service, Subject
from ordo.kit.testing import eventually

SIGNALS = 24
QUANTITY = Decimal("0.01")


async def test_services_killed_mid_flow_lose_nothing_and_double_nothing(
    operator: Operator, stack: Stack
) -> None:
    account = f"crash-{uuid.uuid4().hex[:6]}"
    strategy = "crash"
    crashes = {4: Service.ORDER, 9: Service.EXECUTION, 14: Service.RISK, 19: Service.SIGNAL}
    signal_ids: list[str] = []

    for i in range(SIGNALS):
        if i in crashes:
            await _crash_and_restart(stack, crashes[i])
        alert = tradingview_alert(
            strategy, account=account, contracts=str(QUANTITY), alert_id=f"{account}-{i}"
        )
        response = await operator.post_alert(**alert)
        assert response.status_code == 202, response.text
        signal_ids.append(response.json()["signal_id"])

    async def all_filled() -> object:
        orders = await operator.orders(account=account, limit=1000)
        done = [o for o in orders if o.status is OrderStatus.FILLED]
        return orders if len(done) == SIGNALS else None

    orders = await eventually(all_filled, timeout=90, what=f"{SIGNALS} filled orders")
    assert sorted(o.signal_id for o in orders) == sorted(signal_ids)  # one order per signal

    (position,) = [p for p in await operator.positions(account=account)]
    assert position.quantity == QUANTITY * SIGNALS == sum(o.filled_quantity for o in orders)

    # The venue saw every client order id once: its position is exactly the OMS's.
    request = RequestVenueSnapshot(
        correlation_id=new_message_id(), producer="operator", account=account, venue="paper"
    )
    reply = await operator.nc.request(str(Subject.EXEC_SNAPSHOT), request.to_json(), timeout=5)
    venue_positions = {p.symbol: p.quantity for p in VenueSnapshot.from_json(reply.data).positions}
    assert venue_positions == {"BTC/USDT": QUANTITY * SIGNALS}


async def _crash_and_restart(stack: Stack, service: Service) -> None:
    stack.kill(service)
    # Spawned on this (long-lived) thread: a child dies with the thread that started it.
    stack.start_service(service, wait=False)
    await asyncio.to_thread(stack.wait_ready, service)
