"""The order domain's exceptions: specific classes, each with a message a person can act on."""

from ordo.contracts.enums import OrderStatus


class OrderDomainError(Exception):
    """Base of every error the order domain raises."""


class InvalidTransition(OrderDomainError):
    """The order state machine has no edge from ``current`` to ``target``."""

    def __init__(self, current: OrderStatus, target: OrderStatus) -> None:
        super().__init__(f"an order cannot go from {current.value} to {target.value}")
        self.current = current
        self.target = target


class ReportMismatch(OrderDomainError):
    """An execution report was handed to an order it does not describe."""


class InvalidFill(OrderDomainError):
    """A fill with a quantity or price no venue can have produced."""


class PlanningError(OrderDomainError):
    """A signal cannot be turned into sensible orders; the message says why."""


class InvalidOrderSpec(PlanningError):
    """An order whose type, time in force and flags no venue could honour together."""


class RebalanceRefused(OrderDomainError):
    """A rebalance that cannot be planned safely (no mark, no capital, weights that do not fit)."""
