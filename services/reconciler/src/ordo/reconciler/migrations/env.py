from ordo.kit.migrations import run_migrations
from ordo.reconciler.store import metadata

run_migrations(metadata)
