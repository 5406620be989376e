from ordo.kit.migrations import run_migrations
from ordo.risk.store import metadata

run_migrations(metadata)
