"""Repositories of marks, held (emulated) orders and rebalances (their tables are in store.py).

Saves are optimistic, as in store.py: an update names the version it loaded, and a save that
changes no row, or an insert that meets an existing key, raises :class:`ConcurrentUpdate`.
A mark is the exception: it needs no version, because "newest wins" is a condition the update
itself states (``WHERE quoted_at < :new``), so two replicas recording quotes cannot lose one.
"""

import json
from collections.abc import Iterable
from decimal import Decimal

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ordo.contracts.orders import TargetWeight
from ordo.contracts.queries import RebalanceView
from ordo.kit.store import ConcurrentUpdate
from ordo.order.domain.emulation import Watch
from ordo.order.domain.marks import Mark
from ordo.order.domain.rebalance import Rebalance, RebalancePhase
from ordo.order.store import AnyRow, _changed_rows, marks, order_watches, rebalances


class MarkRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def record(self, mark: Mark) -> bool:
        """Keep ``mark`` if it is newer than the one stored; True when it became the mark."""
        result = await self._session.execute(
            update(marks)
            .where(
                marks.c.venue == mark.venue,
                marks.c.symbol == mark.symbol,
                marks.c.quoted_at < mark.quoted_at,
            )
            .values(price=mark.price, quoted_at=mark.quoted_at)
        )
        if _changed_rows(result) == 1:
            return True
        if await self.get(mark.venue, mark.symbol) is not None:
            return False  # the stored mark is as new or newer
        try:
            await self._session.execute(
                insert(marks).values(
                    venue=mark.venue, symbol=mark.symbol, price=mark.price, quoted_at=mark.quoted_at
                )
            )
        except IntegrityError as exc:
            raise ConcurrentUpdate(f"the first mark of {mark.venue}/{mark.symbol} raced") from exc
        return True

    async def get(self, venue: str, symbol: str) -> Mark | None:
        row = (
            await self._session.execute(
                select(marks).where(marks.c.venue == venue, marks.c.symbol == symbol)
            )
        ).one_or_none()
        return None if row is None else _mark_from(row)


async def all_marks(session: AsyncSession, venue: str | None = None) -> dict[tuple[str, str], Mark]:
    query = select(marks)
    if venue is not None:
        query = query.where(marks.c.venue == venue)
    found = [_mark_from(row) for row in (await session.execute(query)).all()]
    return {(mark.venue, mark.symbol): mark for mark in found}


def _mark_from(row: AnyRow) -> Mark:
    return Mark(venue=row.venue, symbol=row.symbol, price=row.price, quoted_at=row.quoted_at)


class WatchRepository:
    """The OMS's watches over held orders."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, watch: Watch) -> None:
        try:
            await self._session.execute(
                insert(order_watches).values(
                    order_id=watch.order_id,
                    venue=watch.venue,
                    symbol=watch.symbol,
                    placed_at=watch.placed_at,
                    best_price=watch.best_price,
                    version=watch.version,
                )
            )
        except IntegrityError as exc:
            raise ConcurrentUpdate(f"order {watch.order_id} is already watched") from exc

    async def of_market(self, venue: str, symbol: str) -> list[Watch]:
        query = (
            select(order_watches)
            .where(order_watches.c.venue == venue, order_watches.c.symbol == symbol)
            .order_by(order_watches.c.placed_at, order_watches.c.order_id)
        )
        return [_watch_from(row) for row in (await self._session.execute(query)).all()]

    async def save(self, watch: Watch, loaded_version: int) -> None:
        result = await self._session.execute(
            update(order_watches)
            .where(
                order_watches.c.order_id == watch.order_id,
                order_watches.c.version == loaded_version,
            )
            .values(best_price=watch.best_price, version=watch.version)
        )
        self._check_one(result, watch.order_id, loaded_version)

    async def remove(self, watch: Watch) -> None:
        """End the watch it was loaded as (the order was released, expired or ended)."""
        result = await self._session.execute(
            delete(order_watches).where(
                order_watches.c.order_id == watch.order_id,
                order_watches.c.version == watch.version,
            )
        )
        self._check_one(result, watch.order_id, watch.version)

    @staticmethod
    def _check_one(result: object, order_id: str, version: int) -> None:
        if _changed_rows(result) != 1:
            raise ConcurrentUpdate(f"the watch of order {order_id} changed since version {version}")


def _watch_from(row: AnyRow) -> Watch:
    return Watch(
        order_id=row.order_id,
        venue=row.venue,
        symbol=row.symbol,
        placed_at=row.placed_at,
        best_price=row.best_price,
        version=row.version,
    )


class RebalanceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._loaded_versions: dict[str, int] = {}

    async def get(self, rebalance_id: str) -> Rebalance | None:
        row = (
            await self._session.execute(
                select(rebalances).where(rebalances.c.rebalance_id == rebalance_id)
            )
        ).one_or_none()
        if row is None:
            return None
        rebalance = _rebalance_from(row)
        self._loaded_versions[rebalance_id] = rebalance.version
        return rebalance

    async def save(self, rebalance: Rebalance) -> None:
        loaded = self._loaded_versions.get(rebalance.rebalance_id)
        values = {
            "account": rebalance.account,
            "strategy": rebalance.strategy,
            "venue": rebalance.venue,
            "targets": _targets_text(rebalance.targets.items()),
            "reserve": rebalance.reserve,
            "phase": rebalance.phase.value,
            "detail": rebalance.detail,
            "version": rebalance.version,
            "created_at": rebalance.created_at,
            "updated_at": rebalance.updated_at,
        }
        if loaded is None:
            try:
                await self._session.execute(
                    insert(rebalances).values(rebalance_id=rebalance.rebalance_id, **values)
                )
            except IntegrityError as exc:
                raise ConcurrentUpdate(
                    f"rebalance {rebalance.rebalance_id} was recorded concurrently"
                ) from exc
        elif loaded != rebalance.version:
            result = await self._session.execute(
                update(rebalances)
                .where(
                    rebalances.c.rebalance_id == rebalance.rebalance_id,
                    rebalances.c.version == loaded,
                )
                .values(**values)
            )
            if _changed_rows(result) != 1:
                raise ConcurrentUpdate(
                    f"rebalance {rebalance.rebalance_id} changed since version {loaded}"
                )
        self._loaded_versions[rebalance.rebalance_id] = rebalance.version


def _targets_text(targets: Iterable[tuple[str, Decimal]]) -> str:
    return json.dumps({symbol: format(weight, "f") for symbol, weight in targets}, sort_keys=True)


def _rebalance_from(row: AnyRow) -> Rebalance:
    return Rebalance(
        rebalance_id=row.rebalance_id,
        account=row.account,
        strategy=row.strategy,
        venue=row.venue,
        targets={symbol: Decimal(weight) for symbol, weight in json.loads(row.targets).items()},
        reserve=row.reserve,
        phase=RebalancePhase(row.phase),
        detail=row.detail,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class MarketRepositories:
    """The repositories of this module, on one unit of work's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.marks = MarkRepository(session)
        self.watches = WatchRepository(session)
        self.rebalances = RebalanceRepository(session)


async def find_rebalances(
    session: AsyncSession,
    *,
    rebalance_id: str | None = None,
    account: str | None = None,
    limit: int = 20,
) -> list[RebalanceView]:
    """Rebalances, newest first."""
    query = select(rebalances)
    if rebalance_id is not None:
        query = query.where(rebalances.c.rebalance_id == rebalance_id)
    if account is not None:
        query = query.where(rebalances.c.account == account)
    query = query.order_by(rebalances.c.created_at.desc(), rebalances.c.rebalance_id.desc()).limit(
        limit
    )
    return [_rebalance_view(_rebalance_from(row)) for row in (await session.execute(query)).all()]


def _rebalance_view(rebalance: Rebalance) -> RebalanceView:
    return RebalanceView(
        rebalance_id=rebalance.rebalance_id,
        phase=rebalance.phase.value,
        account=rebalance.account,
        strategy=rebalance.strategy,
        venue=rebalance.venue,
        reserve=rebalance.reserve,
        targets=tuple(
            TargetWeight(symbol=symbol, weight=weight)
            for symbol, weight in sorted(rebalance.targets.items())
        ),
        detail=rebalance.detail,
        created_at=rebalance.created_at,
        updated_at=rebalance.updated_at,
    )
