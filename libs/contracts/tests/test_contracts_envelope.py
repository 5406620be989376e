"""The envelope every message carries, and the value rules at the boundary."""

from datetime import datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from ordo.contracts.enums import Intent, SignalSource, SizeUnit
from ordo.contracts.orders import OrderProposed, OrderSpec, RebalancePortfolio, TargetWeight
from ordo.contracts.signals import SignalAccepted, SignalRequest, Size
from ordo.contracts.types import utc_now


def accepted(**overrides: object) -> SignalAccepted:
    fields: dict[str, object] = {
        "correlation_id": "sig-1",
        "producer": "signal",
        "signal_id": "sig-1",
        "source": SignalSource.TRADINGVIEW,
        "received_at": utc_now(),
        "signal": SignalRequest(
            account="main",
            strategy="demo",
            venue="paper",
            symbol="BTC/USDT",
            intent=Intent.ENTER_LONG,
            size=Size(unit=SizeUnit.QUANTITY, value=Decimal("0.01")),
        ),
    }
    fields.update(overrides)
    return SignalAccepted(**fields)  # type: ignore[arg-type]


def test_a_message_carries_its_schema_name_and_version() -> None:
    assert b'"schema":"SignalAccepted.v1"' in accepted().to_json()


def test_message_ids_sort_by_creation_time() -> None:
    ids = [accepted().message_id for _ in range(50)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 50


def test_a_caused_message_keeps_the_correlation_id_and_points_at_its_cause() -> None:
    signal = accepted()
    spec = OrderSpec(
        order_id="o-1",
        account="main",
        strategy="demo",
        venue="paper",
        symbol="BTC/USDT",
        side="buy",
        quantity=Decimal("0.01"),
    )
    proposal = OrderProposed.caused_by(
        signal,
        producer="order",
        proposal_id="p-1",
        signal_id="sig-1",
        account="main",
        orders=(spec,),
    )
    assert proposal.correlation_id == signal.correlation_id
    assert proposal.causation_id == signal.message_id


def test_floats_are_refused_for_money() -> None:
    with pytest.raises(ValidationError, match="never as floats"):
        Size(unit=SizeUnit.QUANTITY, value=0.1)  # type: ignore[arg-type]


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        accepted(received_at=datetime(2026, 1, 1, 12, 0))  # noqa: DTZ001


def test_datetimes_are_normalised_to_utc() -> None:
    message = accepted(received_at="2026-01-01T12:00:00+02:00")
    assert message.received_at.isoformat() == "2026-01-01T10:00:00+00:00"


def test_a_schema_that_does_not_match_the_class_is_refused() -> None:
    data = accepted().model_dump(mode="json", by_alias=True)
    data["schema"] = "SignalAccepted.v2"
    with pytest.raises(ValidationError, match="does not match"):
        SignalAccepted.model_validate(data)


def test_unknown_fields_are_refused() -> None:
    data = accepted().model_dump(mode="json", by_alias=True)
    data["surprise"] = 1
    with pytest.raises(ValidationError, match="surprise"):
        SignalAccepted.model_validate(data)


@given(
    st.decimals(
        allow_nan=False,
        allow_infinity=False,
        min_value=Decimal("1e-12"),
        max_value=Decimal("1e12"),
        places=12,
    )
)
def test_decimals_survive_the_wire_exactly(value: Decimal) -> None:
    message = accepted(
        signal=SignalRequest(
            account="main",
            strategy="demo",
            venue="paper",
            symbol="BTC/USDT",
            intent=Intent.ENTER_LONG,
            size=Size(unit=SizeUnit.QUANTITY, value=value),
        )
    )
    decoded = SignalAccepted.from_json(message.to_json())
    assert decoded == message
    assert decoded.signal.size is not None and decoded.signal.size.value == value


def rebalance(*weights: str, reserve: str = "0") -> RebalancePortfolio:
    return RebalancePortfolio(
        correlation_id="r-1",
        producer="operator",
        rebalance_id="r-1",
        account="main",
        strategy="demo",
        venue="paper",
        targets=tuple(
            TargetWeight(symbol=f"S{index}/USDT", weight=Decimal(weight))
            for index, weight in enumerate(weights)
        ),
        reserve=Decimal(reserve),
    )


def test_a_negative_target_weight_is_refused_at_the_boundary() -> None:
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        TargetWeight(symbol="BTC/USDT", weight=Decimal("-0.1"))


@pytest.mark.parametrize(
    ("weights", "reserve", "problem"),
    [
        (("0.5", "0.5"), "0", None),
        (("0", "0.9"), "0.1", None),  # a weight of 0 sells the symbol's holding
        (("0.6", "0.5"), "0", "the weights (1.1) and the cash reserve (0) add up to more"),
        (("0.5",), "0.6", "the weights (0.5) and the cash reserve (0.6) add up to more"),
        (("0.5",), "1", "a cash reserve of 1 leaves nothing to invest"),
    ],
)
def test_weights_and_the_reserve_may_add_up_to_the_whole_portfolio_at_most(
    weights: tuple[str, ...], reserve: str, problem: str | None
) -> None:
    found = rebalance(*weights, reserve=reserve).allocation_problem()
    assert found == problem if problem is None else problem in (found or "")
