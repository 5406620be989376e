"""Two replicas of the risk service on one durable consumer and one store cannot both approve
against the same headroom: concurrent proposals that together exceed a limit are approved only up
to it, whether the limit is on the position, on the day's traded notional (a counter in the store)
or on the order rate (a window in Redis). Real NATS JetStream and Redis; the store is an SQLite file
both replicas open, or a PostgreSQL database (ORDO_TEST_POSTGRES_URL, or a Docker engine).
"""

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import nats
import pytest
from redis.asyncio import Redis
from sqlalchemy import select

from ordo.contracts.enums import OrderType, Side
from ordo.contracts.orders import OrderProposed, OrderSpec
from ordo.contracts.risk import OrderApproved, OrderDenied
from ordo.contracts.subjects import Service, Subject, durable_name
from ordo.kit.embedded import NatsCredentials, NatsServer, RedisServer
from ordo.kit.service import ServiceKit
from ordo.kit.settings import NatsSettings
from ordo.kit.testing import eventually
from ordo.risk import store
from ordo.risk.app import build
from ordo.risk.config import RiskSettings
from ordo.risk.domain.limits import AccountLimits, RiskLimits

LIMIT = Decimal(5)
PROPOSALS = 40  # of 1 each at 100: eight times the room
FETCH_BATCH = 16  # each replica's pull takes at most this many: both must take a share


@dataclass(frozen=True)
class Headroom:
    """A limit with room for five of the proposals, and the code that denies the rest."""

    limits: RiskLimits
    code: str
    in_redis: bool = False


HEADROOMS = {
    "position": Headroom(RiskLimits(max_position_quantity=LIMIT), "MAX_POSITION_QUANTITY"),
    "daily-notional": Headroom(
        RiskLimits(max_daily_traded_notional=LIMIT * 100), "MAX_DAILY_TRADED_NOTIONAL"
    ),
    "order-rate-in-redis": Headroom(
        RiskLimits(order_rate_window_seconds=3600, max_orders_per_account=int(LIMIT)),
        "ORDER_RATE_ACCOUNT",
        in_redis=True,
    ),
}


@pytest.fixture
async def nats_server(tmp_path: Path) -> AsyncIterator[NatsServer]:
    # A server of its own: the risk service's durable consumers start empty.
    server = NatsServer(tmp_path / "nats", NatsCredentials.generate()).start()
    yield server
    server.stop()


@pytest.fixture
async def admin(nats_server: NatsServer) -> AsyncIterator[Any]:
    user = nats_server.credentials.admin
    client = await nats.connect(nats_server.url, user=user.name, password=user.password)
    yield client
    await client.drain()


@pytest.fixture(params=sorted(HEADROOMS))
def headroom(request: pytest.FixtureRequest) -> Headroom:
    return HEADROOMS[request.param]


@pytest.fixture
def redis_url(headroom: Headroom, tmp_path: Path) -> Iterator[str | None]:
    if not headroom.in_redis:
        yield None
        return
    server = RedisServer(tmp_path / "redis").start()
    yield server.url
    server.stop()


@pytest.fixture
async def replicas(
    nats_server: NatsServer, database_url: str, headroom: Headroom, redis_url: str | None
) -> AsyncIterator[list[ServiceKit]]:
    user = nats_server.credentials.for_service(Service.RISK)
    kits = []
    for name in ("risk-a", "risk-b"):
        settings = RiskSettings(
            instance=name,
            database_url=database_url,
            nats=NatsSettings(
                url=nats_server.url,
                user=user.name,
                password=user.password,
                fetch_batch=FETCH_BATCH,
            ),
            limits=AccountLimits(default=headroom.limits),
            redis_url=redis_url,
            position_sync_seconds=0.5,  # no OMS here: its positions are not waited for
        )
        kit = build(settings, telemetry=False)
        await kit.start(serve_http=False)  # the first migrates the store, the second finds it so
        kits.append(kit)
    yield kits
    for kit in kits:
        await kit.stop()


def a_proposal(account: str, n: int) -> OrderProposed:
    spec = OrderSpec(
        order_id=f"{account}-o{n}",
        account=account,
        strategy=f"s{n % 4}",  # several strategies: the limit is on the account's net position
        venue="paper",
        symbol="BTC/USDT",
        side=Side.BUY,
        order_type=OrderType.MARKET,
        quantity=Decimal(1),
        reference_price=Decimal(100),
    )
    return OrderProposed(
        proposal_id=f"{account}-p{n}",
        signal_id=f"{account}-s{n}",
        account=account,
        orders=(spec,),
        correlation_id=f"{account}-s{n}",
        producer="order",
    )


async def both_replicas_pulling(admin: Any) -> bool:
    """Each replica has asked for a batch: the proposals will be split between them."""
    info = await admin.jetstream().consumer_info(
        "ORDERS", durable_name(Service.RISK, Subject.ORDER_PROPOSED)
    )
    return bool(info.num_waiting >= 2)


async def test_concurrent_proposals_on_two_replicas_never_approve_past_the_limit(
    replicas: list[ServiceKit], admin: Any, headroom: Headroom, redis_url: str | None
) -> None:
    account = f"race-{uuid.uuid4().hex[:6]}"
    await eventually(lambda: both_replicas_pulling(admin), what="both replicas pulling")
    js = admin.jetstream()

    await asyncio.gather(
        *(
            js.publish(
                str(Subject.ORDER_PROPOSED),
                proposal.to_json(),
                headers={"Nats-Msg-Id": proposal.message_id},
            )
            for proposal in (a_proposal(account, n) for n in range(PROPOSALS))
        )
    )

    decisions = await eventually(
        lambda: _published_decisions(admin, account),
        timeout=120,
        what=f"{PROPOSALS} decisions on {Subject.RISK_APPROVED} / {Subject.RISK_DENIED}",
    )
    approved = [d for d in decisions if isinstance(d, OrderApproved)]
    approved_quantity = sum((o.quantity for d in approved for o in d.orders), Decimal(0))
    assert approved_quantity <= LIMIT
    assert approved_quantity == LIMIT  # and the room was used, not lost to the race
    denied = [d for d in decisions if isinstance(d, OrderDenied)]
    assert {r.code for d in denied for r in d.reasons} == {headroom.code}

    # What the store holds agrees: five reservations, forty audited decisions.
    async with replicas[0].db.session() as session:
        reserved = (await session.execute(select(store.reservations.c.remaining))).scalars()
        audited = (await session.execute(select(store.decisions.c.approved))).scalars().all()
    assert sum(reserved, Decimal(0)) == LIMIT
    assert (len(audited), sum(audited)) == (PROPOSALS, int(LIMIT))

    # The race was real: both replicas decided (each denied some, having taken its own batch).
    denials = [_denials(kit, headroom.code) for kit in replicas]
    assert all(count > 0 for count in denials), f"denials per replica: {denials}"
    if redis_url is not None:
        # Counted in Redis, not in the store the replicas fall back to when Redis fails.
        async with Redis.from_url(redis_url) as redis:
            assert await redis.zcard(f"ordo:risk:rate:{{{account}}}") == LIMIT
        async with replicas[0].db.session() as session:
            assert (await session.execute(select(store.order_rate))).all() == []


async def _published_decisions(admin: Any, account: str) -> list[Any] | None:
    found: list[Any] = []
    for subject, kind in (
        (Subject.RISK_APPROVED, OrderApproved),
        (Subject.RISK_DENIED, OrderDenied),
    ):
        sub = await admin.jetstream().subscribe(str(subject), stream="RISK", ordered_consumer=True)
        try:
            while True:
                try:
                    message = await sub.next_msg(timeout=0.5)
                except nats.errors.TimeoutError:
                    break
                decision = kind.from_json(message.data)
                if decision.account == account:
                    found.append(decision)
        finally:
            await sub.unsubscribe()
    return found if len(found) >= PROPOSALS else None


def _denials(kit: ServiceKit, code: str) -> float:
    value = kit.registry.get_sample_value("ordo_risk_denials_total", {"reason": code})
    return value or 0.0
