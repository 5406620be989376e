"""Venue credentials: from the environment or secret files, read once, never shown.

An account's secrets are named ``ORDO_VENUE_<NAME>_API_KEY``, ``_SECRET``, ``_PASSWORD`` (some
exchanges call it a passphrase) and ``_UID``; each may instead be a file named by the same
variable with ``_FILE`` (a Kubernetes Secret mounted as files). They live only in this process:
never in a message, a log line or an error (``repr`` hides them).
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

_FIELDS = {"api_key": "apiKey", "secret": "secret", "password": "password", "uid": "uid"}


class MissingCredentials(ValueError):
    """A venue account's secrets are missing or unreadable (the service refuses to start)."""


@dataclass(frozen=True)
class VenueCredentials:
    api_key: str = field(repr=False)
    secret: str = field(repr=False)
    password: str | None = field(default=None, repr=False)
    uid: str | None = field(default=None, repr=False)

    def ccxt_config(self) -> dict[str, str]:
        """The credentials as ccxt's exchange constructor takes them."""
        values = {name: getattr(self, name) for name in _FIELDS}
        return {_FIELDS[name]: value for name, value in values.items() if value is not None}


def read_credentials(name: str, environ: Mapping[str, str] | None = None) -> VenueCredentials:
    """The secrets of ``ORDO_VENUE_<name>_*``; an API key and a secret are required."""
    env = os.environ if environ is None else environ
    values = {key: _secret(f"ORDO_VENUE_{name}_{key.upper()}", env) for key in _FIELDS}
    missing = [key for key in ("api_key", "secret") if values[key] is None]
    if missing:
        wanted = ", ".join(f"ORDO_VENUE_{name}_{key.upper()}(_FILE)" for key in missing)
        raise MissingCredentials(f"venue credentials {name}: set {wanted}")
    return VenueCredentials(
        api_key=values["api_key"] or "",
        secret=values["secret"] or "",
        password=values["password"],
        uid=values["uid"],
    )


def _secret(variable: str, env: Mapping[str, str]) -> str | None:
    value, path = env.get(variable), env.get(f"{variable}_FILE")
    if value and path:
        raise MissingCredentials(f"set {variable} or {variable}_FILE, not both")
    if path:
        try:
            value = Path(path).read_text(encoding="utf-8").strip()
        except OSError as error:
            raise MissingCredentials(
                f"{variable}_FILE: cannot read {path}: {error.strerror}"
            ) from None
    return value or None
