"""A netted position per (account, strategy, venue, symbol), and the money math of its fills.

Quantity is signed: long > 0, short < 0. The average entry is the quantity-weighted average of
the fills that opened or grew the position; closing part of it does not move it. Fees are part
of P&L, always: an entry fee is carried by the open quantity and released, pro rata, into the
realised P&L of the fills that close that quantity, together with the closing fill's own fee.
So a round trip at one price realises exactly minus its fees, and over any sequence of fills
that ends flat, realised P&L = sells - buys - fees.

Fees are taken to be in the quote currency (a negative fee is a maker rebate).
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from ordo.contracts.enums import Side
from ordo.contracts.orders import PositionView
from ordo.order.domain.errors import InvalidFill

ZERO = Decimal(0)


def _pro_rata(amount: Decimal, part: Decimal, whole: Decimal) -> Decimal:
    """``amount * part / whole``, exact when the part is the whole (no rounding residue)."""
    return amount if part == whole else amount * part / whole


@dataclass
class Position:
    account: str
    strategy: str
    venue: str
    symbol: str
    updated_at: datetime
    quantity: Decimal = ZERO
    average_entry: Decimal | None = None
    realised_pnl: Decimal = ZERO  # after fees
    fees: Decimal = ZERO  # every fee paid, entries and exits
    open_entry_fees: Decimal = ZERO  # entry fees of the open quantity, not yet realised
    version: int = 0

    @classmethod
    def flat(
        cls, account: str, strategy: str, venue: str, symbol: str, now: datetime
    ) -> "Position":
        return cls(account=account, strategy=strategy, venue=venue, symbol=symbol, updated_at=now)

    @property
    def is_flat(self) -> bool:
        return self.quantity == ZERO

    @property
    def side(self) -> Side | None:
        """The side of the open position: BUY for long, SELL for short, None when flat."""
        if self.is_flat:
            return None
        return Side.BUY if self.quantity > ZERO else Side.SELL

    def apply_fill(
        self,
        side: Side,
        quantity: Decimal,
        price: Decimal,
        fee: Decimal,
        now: datetime | None = None,
    ) -> Decimal:
        """Apply one fill; return the P&L (after fees) it realised."""
        if quantity <= ZERO or price <= ZERO:
            raise InvalidFill(
                f"a fill needs a positive quantity and price, not {quantity} @ {price}"
            )
        held = abs(self.quantity)
        if self.side in (None, side):
            self._open(side, quantity, price, fee)
            realised = ZERO
        elif quantity <= held:
            realised = self._close(quantity, price, fee)
        else:
            # The fill crosses through zero: it closes everything held and opens the rest on
            # the other side at the same price; the fee splits in proportion.
            closing_fee = _pro_rata(fee, held, quantity)
            realised = self._close(held, price, closing_fee)
            self._open(side, quantity - held, price, fee - closing_fee)
        self.realised_pnl += realised
        self.version += 1
        if now is not None:
            self.updated_at = now
        return realised

    def _open(self, side: Side, quantity: Decimal, price: Decimal, fee: Decimal) -> None:
        held = abs(self.quantity)
        entry = self.average_entry or ZERO
        self.average_entry = (held * entry + quantity * price) / (held + quantity)
        self.quantity += side.sign * quantity
        self.open_entry_fees += fee
        self.fees += fee

    def _close(self, quantity: Decimal, price: Decimal, fee: Decimal) -> Decimal:
        held = abs(self.quantity)
        direction = 1 if self.quantity > ZERO else -1
        entry = self.average_entry or ZERO
        released_entry_fees = _pro_rata(self.open_entry_fees, quantity, held)
        realised = (price - entry) * quantity * direction - fee - released_entry_fees
        self.quantity -= direction * quantity
        self.open_entry_fees -= released_entry_fees
        self.fees += fee
        if self.quantity == ZERO:
            self.average_entry = None
            self.open_entry_fees = ZERO
        return realised

    def to_view(self) -> PositionView:
        return PositionView(
            account=self.account,
            strategy=self.strategy,
            venue=self.venue,
            symbol=self.symbol,
            quantity=self.quantity,
            average_entry=self.average_entry,
            realised_pnl=self.realised_pnl,
            fees=self.fees,
            version=self.version,
            updated_at=self.updated_at,
        )
