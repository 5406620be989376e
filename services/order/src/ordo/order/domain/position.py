"""A netted position per (account, strategy, venue, symbol), and the money math of its fills.

Quantity is signed: long > 0, short < 0. The average entry is the quantity-weighted average of
the fills that opened or grew the position; closing part of it does not move it. Fees are part
of P&L, always, and P&L is counted two ways:

- the position's ``realised_pnl`` is the account's money: the P&L of every close minus every fee
  the moment it is paid, so an open position has already realised minus its entry fees;
- the figure :meth:`Position.apply_fill` returns is the trade's: a closing fill realises its own
  fee and, pro rata, the entry fees carried by the quantity it closes (``open_entry_fees``).

Both agree whenever the position is flat: a round trip at one price realises exactly minus its
fees, and over any sequence of fills that ends flat, realised P&L = sells - buys - fees.

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
    realised_pnl: Decimal = ZERO  # after every fee paid so far, entries included
    fees: Decimal = ZERO  # every fee paid, entries and exits
    # Entry fees of the open quantity: already paid, not yet attributed to a closing trade.
    open_entry_fees: Decimal = ZERO
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
        """Apply one fill; return the trade P&L (after fees) of the quantity it closed."""
        if quantity <= ZERO or price <= ZERO:
            raise InvalidFill(
                f"a fill needs a positive quantity and price, not {quantity} @ {price}"
            )
        held = abs(self.quantity)
        if self.side in (None, side):
            self._open(side, quantity, price, fee)
            gross = realised = ZERO
        elif quantity <= held:
            gross, realised = self._close(quantity, price, fee)
        else:
            # The fill crosses through zero: it closes everything held and opens the rest on
            # the other side at the same price; the fee splits in proportion.
            closing_fee = _pro_rata(fee, held, quantity)
            gross, realised = self._close(held, price, closing_fee)
            self._open(side, quantity - held, price, fee - closing_fee)
        # The whole fee at once: its split across a flip may round, what was paid does not.
        self.fees += fee
        self.realised_pnl += gross - fee
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

    def _close(self, quantity: Decimal, price: Decimal, fee: Decimal) -> tuple[Decimal, Decimal]:
        """Close ``quantity``; return its P&L before fees and its trade P&L after both fees."""
        held = abs(self.quantity)
        direction = 1 if self.quantity > ZERO else -1
        entry = self.average_entry or ZERO
        released_entry_fees = _pro_rata(self.open_entry_fees, quantity, held)
        gross = (price - entry) * quantity * direction
        realised = gross - fee - released_entry_fees
        self.quantity -= direction * quantity
        self.open_entry_fees -= released_entry_fees
        if self.quantity == ZERO:
            self.average_entry = None
            self.open_entry_fees = ZERO
        return gross, realised

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
