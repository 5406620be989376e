"""Value types shared by every contract: exact decimals and timezone-aware UTC datetimes."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field, PlainSerializer

# An amount travels as plain text, which grows with its places: the 10 characters "1E-2000000"
# become two million. No price, quantity or sum of money comes near this many places.
MAX_DECIMAL_PLACES = 60


def _refuse_float(value: Any) -> Any:
    # A float has already lost the exact value the sender meant; accepting it would hide that.
    if isinstance(value, float):
        raise ValueError("decimal amounts must be sent as strings (or integers), never as floats")
    return value


def _refuse_too_many_places(value: Decimal) -> Decimal:
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_DECIMAL_PLACES:
        raise ValueError(f"decimal amounts may have at most {MAX_DECIMAL_PLACES} decimal places")
    return value


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # 0001-01-01T00:00+01:00 is a valid time whose UTC falls before year 1.
        raise ValueError("is outside the range of times that UTC can represent") from None


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


_DecimalString = PlainSerializer(lambda d: format(d, "f"), return_type=str, when_used="json")

Decimal_ = Annotated[
    Decimal,
    BeforeValidator(_refuse_float),
    Field(allow_inf_nan=False),
    AfterValidator(_refuse_too_many_places),
    _DecimalString,
]
"""An exact decimal, serialised as a plain string; floats and over 60 decimal places are refused."""

Money = Decimal_
"""An amount of money in the quote currency."""

Price = Annotated[Decimal_, Field(gt=0)]
"""A strictly positive price."""

Quantity = Annotated[Decimal_, Field(ge=0)]
"""A non-negative quantity of the base asset."""

UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""A timezone-aware datetime, normalised to UTC; naive datetimes are refused."""
