"""An emulated stop through the order service over real NATS JetStream and a real store.

The venue takes no stops (configured), so the OMS holds the stop-loss; quotes arrive on
market.quote.v1; the first to cross the stop releases it as a market order proposed to the risk
gate on order.proposed.v1, and the approval and the venue's fill finish it as any other order.
"""

from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from test_order_replicas import fill_reports, publisher

from ordo.contracts.enums import OrderStatus, OrderType, Side
from ordo.contracts.envelope import new_message_id
from ordo.contracts.market import MarketQuote
from ordo.contracts.orders import OrderProposed, OrderSpec
from ordo.contracts.risk import OrderApproved
from ordo.contracts.subjects import Subject
from ordo.contracts.types import utc_now
from ordo.kit.embedded import NatsServer
from ordo.kit.service import ServiceKit
from ordo.kit.settings import NatsSettings
from ordo.kit.testing import eventually
from ordo.order import store
from ordo.order.app import build
from ordo.order.config import OrderSettings
from ordo.order.handlers import OrderManagement
from ordo.order.market_handlers import OrderPlacement
from ordo.order.store import Repositories

pytestmark = pytest.mark.integration

ACCOUNT, STRATEGY, VENUE, SYMBOL = "emul", "stops", "paper", "ETH/USDT"


@pytest.fixture
async def oms(nats_server: NatsServer, tmp_path: Path) -> AsyncIterator[ServiceKit]:
    admin = nats_server.credentials.admin
    settings = OrderSettings(
        nats=NatsSettings(url=nats_server.url, user=admin.name, password=admin.password),
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'order.db'}",
        var_dir=tmp_path,
        venues={VENUE: {"order_types": ["market", "limit"]}},
    )
    kit = build(settings, telemetry=False)
    await kit.start(serve_http=False)  # migrates
    yield kit
    await kit.stop()


async def place_held(kit: ServiceKit, spec: OrderSpec) -> None:
    settings = kit.settings
    assert isinstance(settings, OrderSettings)
    placement = OrderPlacement(
        settings.venue_capabilities(), OrderManagement(settings.market_rules()).settle_order
    )
    now = utc_now()
    async with kit.outbox.transaction() as tx:
        proposed = await placement.place(
            placement.prepare([spec], now),
            signal_id="sig-stop",
            proposal_id="prop-stop",
            cause=_quote("3000", now),
            repos=Repositories(tx.session),
            tx=tx,
            now=now,
            detail="a stop-loss placed by the test",
        )
    assert proposed == []


def _quote(last: str, at: object) -> MarketQuote:
    return MarketQuote(
        correlation_id=new_message_id(),
        producer="execution",
        venue=VENUE,
        symbol=SYMBOL,
        last=Decimal(last),
        quoted_at=at,  # type: ignore[arg-type]
    )


async def test_a_held_stop_is_released_by_the_quote_that_crosses_it_and_then_fills(
    oms: ServiceKit, nats_server: NatsServer
) -> None:
    stop = OrderSpec(
        order_id=new_message_id(),
        account=ACCOUNT,
        strategy=STRATEGY,
        venue=VENUE,
        symbol=SYMBOL,
        side=Side.SELL,
        order_type=OrderType.STOP_MARKET,
        stop_price=Decimal(2900),
        quantity=Decimal(2),
    )
    await place_held(oms, stop)
    nc, js, publish = await publisher(nats_server)
    try:
        start = utc_now() + timedelta(seconds=1)
        await publish(_quote("2950", start))
        await publish(_quote("2890", start + timedelta(seconds=1)))

        async def released() -> OrderProposed | None:
            pull = await js.pull_subscribe(str(Subject.ORDER_PROPOSED), stream="ORDERS")
            try:
                messages = await pull.fetch(batch=100, timeout=1)
            except TimeoutError:
                return None
            finally:
                await pull.unsubscribe()
            found = [OrderProposed.from_json(m.data) for m in messages]
            ours = [p for p in found if p.orders[0].order_id == stop.order_id]
            return ours[0] if ours else None

        proposal = await eventually(released, timeout=30, what="the stop released on NATS")
        (sent,) = proposal.orders
        assert (sent.order_type, sent.reference_price) == (OrderType.MARKET, Decimal(2890))

        await publish(
            OrderApproved.caused_by(
                proposal,
                producer="risk",
                proposal_id=proposal.proposal_id,
                account=ACCOUNT,
                orders=proposal.orders,
            )
        )
        for report in fill_reports(sent):
            await publish(report)

        async def filled() -> object:
            async with oms.db.session() as session:
                (order,) = await store.find_orders(session, order_id=stop.order_id)
            return order if order.status is OrderStatus.FILLED else None

        await eventually(filled, timeout=30, what="the released stop FILLED")
    finally:
        await nc.drain()
