"""The OMS's own metric: the orders in its store, by status (``ordo_orders{status}``)."""

from prometheus_client import CollectorRegistry, Gauge

from ordo.contracts.enums import OrderStatus
from ordo.kit.store import Database
from ordo.order import store


class OrdersByStatus:
    """Counted in the store when Prometheus scrapes (every replica counts the same store)."""

    def __init__(self, db: Database, registry: CollectorRegistry) -> None:
        self._db = db
        self._orders = Gauge(
            "ordo_orders", "Orders in the OMS store, by status", ["status"], registry=registry
        )

    async def measure(self) -> None:
        async with self._db.session() as session:
            counts = await store.count_orders_by_status(session)
        for status in OrderStatus:  # every status, so that a status nobody is in reads 0
            self._orders.labels(status=status.value).set(counts.get(status, 0))
