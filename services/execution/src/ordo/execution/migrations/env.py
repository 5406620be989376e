from ordo.execution.store import metadata
from ordo.kit.migrations import run_migrations

run_migrations(metadata)
