"""Ordo's versioned message contracts.

Every message that crosses a service boundary is defined here, frozen and versioned. Subjects,
streams and the permission map live in :mod:`ordo.contracts.subjects`; services never spell a
subject as a literal.
"""

from ordo.contracts.envelope import Message, new_message_id
from ordo.contracts.types import Money, Price, Quantity, UtcDatetime, utc_now

__all__ = ["Message", "Money", "Price", "Quantity", "UtcDatetime", "new_message_id", "utc_now"]
