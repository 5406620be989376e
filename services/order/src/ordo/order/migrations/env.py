from ordo.kit.migrations import run_migrations
from ordo.order.store import metadata

run_migrations(metadata)
