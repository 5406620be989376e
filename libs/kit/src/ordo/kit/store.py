"""The async SQLAlchemy store every service builds on: one database per service.

SQLite (aiosqlite) by default, PostgreSQL (asyncpg) by URL. Each service declares its tables on
its own ``MetaData`` and gets the outbox and inbox tables added to it by :func:`messaging_tables`.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal
from pathlib import Path
from typing import Any

from opentelemetry import trace
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    event,
    text,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.types import TypeDecorator, TypeEngine

from ordo.contracts.types import utc_now

tracer = trace.get_tracer(__name__)


class ConcurrentUpdate(Exception):
    """A row changed since it was loaded (another replica or handler won the race).

    Stores raise it from optimistic saves (``UPDATE ... WHERE version = :loaded``); the kit then
    runs the whole unit of work again on fresh data.
    """


NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> MetaData:
    """A service's metadata, with constraint names that migrations can rely on."""
    return MetaData(naming_convention=NAMING_CONVENTION)


class UtcDateTime(TypeDecorator[Any]):
    """A timezone-aware UTC datetime on every backend (SQLite stores no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetimes are not stored: use a timezone-aware UTC datetime")
        return value

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


_STORED_PLACES = Decimal("1e-18")
_WIDE = Context(prec=60, rounding=ROUND_HALF_EVEN)  # 38 digits + 18 places, with room


class ExactDecimal(TypeDecorator[Decimal]):
    """An exact decimal on every backend: NUMERIC on PostgreSQL, text on SQLite.

    SQLite has no decimal type and would keep a NUMERIC as a binary float, which loses money.
    Values are rounded (half to even) to 18 decimal places on both backends, explicitly: the
    PostgreSQL column would round silently, and SQLite would keep more, so the two would differ.
    Amounts from venues never carry that many places; only derived values such as averages do.
    """

    impl = String(64)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(38, 18, asdecimal=True))
        return dialect.type_descriptor(String(64))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError("floats are not stored as money: use Decimal")
        value = _without_padding(Decimal(value).quantize(_STORED_PLACES, context=_WIDE))
        return value if dialect.name == "postgresql" else format(value, "f")

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return _without_padding(Decimal(value))


def _without_padding(value: Decimal) -> Decimal:
    """Drop the trailing zeros of the 18 stored places, without switching to exponents."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return Decimal(text)


def dialect_of(session: AsyncSession) -> str:
    return session.bind.dialect.name if session.bind else "sqlite"


def insert_with_conflicts(session: AsyncSession, table: Table) -> Any:
    """An INSERT that can say ``on_conflict_do_nothing`` / ``on_conflict_do_update``.

    Both supported backends have it, each in its own dialect's construct.
    """
    insert_for_dialect = pg_insert if dialect_of(session) == "postgresql" else sqlite_insert
    return insert_for_dialect(table)


@dataclass(frozen=True)
class MessagingTables:
    outbox: Table
    inbox: Table


def messaging_tables(metadata: MetaData) -> MessagingTables:
    """Add the transactional outbox and the inbox of consumed message ids to ``metadata``."""
    outbox = Table(
        "outbox",
        metadata,
        Column(
            "seq",
            BigInteger().with_variant(Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        Column("message_id", String(64), nullable=False, unique=True),
        Column("subject", String(200), nullable=False),
        Column("stream", String(64), nullable=True),
        Column("payload", Text, nullable=False),
        Column("headers", JSON, nullable=False),
        Column("correlation_id", String(64), nullable=False),
        Column("caused_by", String(200), nullable=True, doc="inbox key of the consumed message"),
        Column("created_at", UtcDateTime, nullable=False),
        Column("sent_at", UtcDateTime, nullable=True),
    )
    Index("ix_outbox_unsent", outbox.c.sent_at, outbox.c.seq)
    Index("ix_outbox_caused_by", outbox.c.caused_by)
    inbox = Table(
        "inbox",
        metadata,
        Column("consumer", String(200), primary_key=True),
        Column("message_id", String(64), primary_key=True),
        Column("processed_at", UtcDateTime, nullable=False, index=True),
    )
    return MessagingTables(outbox=outbox, inbox=inbox)


class Database:
    """The service's engine and session factory."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.engine: AsyncEngine = _create_engine(url, echo=echo)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session; in a trace (a handler, a request), a ``store.transaction`` span of it.

        Work outside any trace (the outbox sweeper, a metrics scrape) makes no span of its own:
        every second of every replica would otherwise start a trace.
        """
        if not trace.get_current_span().get_span_context().is_valid:
            async with self.sessions() as session:
                yield session
            return
        attributes = {"db.system": self.engine.dialect.name}
        with tracer.start_as_current_span(
            "store.transaction", kind=trace.SpanKind.CLIENT, attributes=attributes
        ):
            async with self.sessions() as session:
                yield session

    async def ping(self) -> bool:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        return True

    async def create_all(self, metadata: MetaData) -> None:
        """For tests only: services create their schema with Alembic migrations."""
        async with self.engine.begin() as connection:
            await connection.run_sync(metadata.create_all)

    async def close(self) -> None:
        await self.engine.dispose()


def _create_engine(url: str, *, echo: bool) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(url, echo=echo, pool_pre_ping=True, pool_size=10)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})

    @event.listens_for(engine.sync_engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
        # WAL lets readers work while one writer commits; the busy timeout makes concurrent
        # writers (the handler and the outbox sweeper) wait instead of failing.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


def retention_cutoff(hours: float) -> datetime:
    return utc_now() - timedelta(hours=hours)
