"""Value types shared by every contract: exact decimals and timezone-aware UTC datetimes."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field, PlainSerializer


def _refuse_float(value: Any) -> Any:
    # A float has already lost the exact value the sender meant; accepting it would hide that.
    if isinstance(value, float):
        raise ValueError("decimal amounts must be sent as strings (or integers), never as floats")
    return value


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


_DecimalString = PlainSerializer(lambda d: format(d, "f"), return_type=str, when_used="json")

Decimal_ = Annotated[
    Decimal, BeforeValidator(_refuse_float), Field(allow_inf_nan=False), _DecimalString
]
"""An exact decimal, serialised as a plain string; floats are refused."""

Money = Decimal_
"""An amount of money in the quote currency."""

Price = Annotated[Decimal_, Field(gt=0)]
"""A strictly positive price."""

Quantity = Annotated[Decimal_, Field(ge=0)]
"""A non-negative quantity of the base asset."""

UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""A timezone-aware datetime, normalised to UTC; naive datetimes are refused."""
