"""The paper venue's books in the store: loaded at start, saved with the reports they explain.

The books are saved in the same transaction as the reports of the change, so after a crash the
store never holds a report whose order the restored venue does not know (nor the reverse: an
order the venue holds but no report mentions stays recorded as pending, and is looked up).
"""

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from ordo.execution import store
from ordo.execution.venues.base import Venue
from ordo.execution.venues.paper import PaperVenue
from ordo.execution.venues.paper_state import PaperVenueState
from ordo.kit.store import Database


class PaperBooks:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._saved: dict[str, PaperVenueState] = {}

    async def load(self) -> list[str]:
        """Read every account's saved books; returns the accounts that have some."""
        async with self._db.session() as session:
            self._saved = await store.load_paper_books(session)
        return sorted(self._saved)

    def saved_origins(self) -> list[datetime]:
        """When the saved accounts' prices start (see ``PaperPrices``)."""
        return [state.feed_origin for state in self._saved.values()]

    def saved_state(self, account: str) -> PaperVenueState | None:
        """What the registry's paper factory restores an account's venue from."""
        return self._saved.get(account)

    async def save(self, session: AsyncSession, account: str, adapter: Venue) -> None:
        """Persist ``adapter``'s books if it is a paper venue (a real venue keeps its own)."""
        if isinstance(adapter, PaperVenue):
            await store.save_paper_book(session, account, adapter.snapshot)
