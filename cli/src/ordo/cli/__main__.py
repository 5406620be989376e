"""``python -m ordo.cli``: the same as the ``ordo`` command."""

from ordo.cli.main import app

app()
