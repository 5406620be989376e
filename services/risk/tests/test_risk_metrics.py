"""``ordo_risk_denials_total{reason}``: each denied proposal counted once, under each reason."""

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from faststream.nats import TestNatsBroker
from risk_factories import order, proposal

from ordo.contracts.envelope import Message
from ordo.contracts.subjects import STREAM_OF_SUBJECT, subject_of
from ordo.kit.service import ServiceKit
from ordo.risk import store
from ordo.risk.app import build
from ordo.risk.config import RiskSettings
from ordo.risk.domain.checks import DenialCode
from ordo.risk.domain.limits import AccountLimits, RiskLimits

LIMITS = AccountLimits(
    default=RiskLimits(max_notional_per_order=Decimal(1000), max_position_quantity=Decimal(5))
)


@pytest.fixture
async def risk(tmp_path: Path) -> AsyncIterator[ServiceKit]:
    settings = RiskSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'risk.db'}", limits=LIMITS
    )
    kit = build(settings, telemetry=False)
    await kit.db.create_all(store.metadata)
    yield kit
    await kit.db.close()


async def send(kit: ServiceKit, *messages: Message) -> None:
    async with TestNatsBroker(kit.broker) as broker:
        for message in messages:
            subject = subject_of(message)
            await broker.publish(message.to_json(), str(subject), stream=STREAM_OF_SUBJECT[subject])


def denials(kit: ServiceKit) -> dict[str, float]:
    counted = {
        code.value: kit.registry.get_sample_value("ordo_risk_denials_total", {"reason": code.value})
        for code in DenialCode
    }
    assert None not in counted.values(), "every reason is exported from the start"
    return {code: value for code, value in counted.items() if value}


async def test_each_denied_proposal_counts_once_under_each_of_its_reasons(risk: ServiceKit) -> None:
    too_big = proposal(order("buy", "15", price="100"))  # 1500 notional, 15 over the position
    approved = proposal(order("buy", "1", price="100"))

    await send(risk, too_big, approved, too_big)  # the repeat is a duplicate: decided once

    assert denials(risk) == {
        DenialCode.MAX_NOTIONAL_PER_ORDER.value: 1,
        DenialCode.MAX_POSITION_QUANTITY.value: 1,
    }
