from ordo.kit.migrations import run_migrations
from ordo.signal.store import metadata

run_migrations(metadata)
