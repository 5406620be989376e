from ordo.kit.migrations import run_migrations
from ordo.notifier.store import metadata

run_migrations(metadata)
