"""Market data: the quotes that execution reads from its venues, for everyone who values orders."""

from pydantic import Field, model_validator

from ordo.contracts.envelope import Message
from ordo.contracts.signals import Name
from ordo.contracts.types import Price, UtcDatetime


class MarketQuote(Message):
    """A venue's top of book and last trade for one symbol, as execution read it.

    The only source of marks (unrealised P&L, equity), of the risk gate's price collar and of the
    triggers of orders the OMS emulates. A quote is a fact at ``quoted_at``; a consumer keeps the
    newest it has seen per venue and symbol and judges for itself whether it is too old to trust.
    """

    schema_name = "MarketQuote"

    venue: Name
    symbol: Name
    bid: Price | None = None
    ask: Price | None = None
    last: Price = Field(description="The last trade price (the mark)")
    quoted_at: UtcDatetime = Field(description="When the venue quoted it")

    @model_validator(mode="after")
    def _bid_below_ask(self) -> "MarketQuote":
        if self.bid is not None and self.ask is not None and self.bid > self.ask:
            raise ValueError(f"a crossed quote (bid {self.bid} above ask {self.ask}) is refused")
        return self
