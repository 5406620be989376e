"""Typed, frozen settings: defaults < the YAML config file < environment variables.

The YAML file (``ORDO_CONFIG``, default ``config/ordo.yaml``) has a ``shared`` section and one
section per service; a service reads ``shared`` deep-merged with its own section. Environment
variables use the ``ORDO_`` prefix and ``__`` between nested names (``ORDO_NATS__URL``).
"""

import os
import socket
from pathlib import Path
from typing import Any, ClassVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

DEFAULT_CONFIG_FILE = Path("config/ordo.yaml")


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NatsSettings(Section):
    url: str = "nats://127.0.0.1:4222"
    user: str | None = None
    password: SecretStr | None = None
    connect_timeout_seconds: float = 5.0
    # Delivery policy of every durable consumer: attempts, then the dead-letter stream.
    max_deliver: int = Field(default=5, ge=1, le=100)
    backoff_seconds: tuple[float, ...] = (0.2, 1.0, 5.0, 15.0)
    ack_wait_seconds: float = Field(default=30.0, gt=0)
    fetch_batch: int = Field(default=16, ge=1, le=1000)
    request_timeout_seconds: float = Field(default=5.0, gt=0)
    # Copies of each stream in a NATS cluster: 3 in production (see deploy/k8s), 1 on one server.
    stream_replicas: int = Field(default=1, ge=1, le=5)


class HttpSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535, description="0 picks a free port")


class TelemetrySettings(Section):
    # OTLP export is configured by the standard OTEL_EXPORTER_OTLP_* environment variables; when
    # none is set, spans go to JSON-lines files here so that `ordo trace` works with no backend.
    span_dir: Path = Path("var/spans")
    sample_ratio: float = Field(default=1.0, ge=0, le=1)


class BreakerSettings(Section):
    failure_threshold: int = Field(default=5, ge=1)
    recovery_seconds: float = Field(default=10.0, gt=0)


class OutboxSettings(Section):
    sweep_interval_seconds: float = Field(default=1.0, gt=0)
    # A row younger than this is left to the handler that wrote it (it publishes right after
    # its commit), so that the sweeper and the handler rarely publish the same row.
    sweep_grace_seconds: float = Field(default=2.0, ge=0)
    # How long sent outbox rows and inbox ids are kept: longer than any redelivery can arrive.
    retention_hours: float = Field(default=72.0, gt=0)


class ServiceSettings(BaseSettings):
    """Settings every service has. A service subclasses it and sets ``service_name``."""

    service_name: ClassVar[str] = ""

    # ``hide_input_in_errors``: a refusal would otherwise print its input, every setting, the
    # secrets among them (the NATS password and database URL every service has, and the
    # services' own).
    model_config = SettingsConfigDict(
        env_prefix="ORDO_",
        env_nested_delimiter="__",
        frozen=True,
        extra="forbid",
        hide_input_in_errors=True,
    )

    instance: str = Field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    nats: NatsSettings = NatsSettings()
    redis_url: str | None = None
    database_url: str | None = Field(default=None, description="Default: SQLite under var_dir")
    var_dir: Path = Path("var")
    http: HttpSettings = HttpSettings()
    telemetry: TelemetrySettings = TelemetrySettings()
    breaker: BreakerSettings = BreakerSettings()
    outbox: OutboxSettings = OutboxSettings()
    log_level: str = "INFO"
    log_json: bool = True
    # Off where a migrations Job applies the schema once (Kubernetes), so replicas never race it.
    migrate_on_start: bool = True

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"unknown log level {value!r}")
        return level

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.var_dir / 'data' / self.service_name}.db"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        yaml_source = YamlSectionSource(settings_cls, cls.service_name)
        return init_settings, env_settings, file_secret_settings, yaml_source


class YamlSectionSource(PydanticBaseSettingsSource):
    """Reads ``shared`` deep-merged with the service's own section of the YAML config file."""

    def __init__(self, settings_cls: type[BaseSettings], section: str) -> None:
        super().__init__(settings_cls)
        self._values = load_config_section(section)

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._values)


def config_file() -> Path | None:
    configured = os.environ.get("ORDO_CONFIG")
    if configured:
        path = Path(configured)
        if not path.is_file():
            raise FileNotFoundError(f"ORDO_CONFIG points to {path}, which is not a file")
        return path
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None


def load_config_section(section: str) -> dict[str, Any]:
    path = config_file()
    if path is None:
        return {}
    document = yaml.safe_load(path.read_text()) or {}
    if not isinstance(document, dict):
        raise ValueError(f"{path}: the config file must be a mapping of sections")
    shared = document.get("shared") or {}
    own = document.get(section) or {}
    for name, value in (("shared", shared), (section, own)):
        if not isinstance(value, dict):
            raise ValueError(f"{path}: section {name!r} must be a mapping")
    return deep_merge(shared, own)


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def resolve_secret(
    settings: ServiceSettings, name: str, *, required: bool, required_by: str | None = None
) -> None:
    """Settle the secret setting ``name`` once, from a model validator of frozen settings.

    A secret comes from ``ORDO_<NAME>`` (the field ``name``, a ``SecretStr``) or from the file
    ``ORDO_<NAME>_FILE`` names (the field ``<name>_file``: its content, stripped), never both, and
    never from the YAML config file (committed, or a ConfigMap: not a place for secrets); an
    empty value counts as none. Without one the field becomes None, or, when ``required``, a
    ValueError names the variables to set. Messages name variables and paths, never a value.
    """
    value: SecretStr | None = getattr(settings, name)
    path: Path | None = getattr(settings, f"{name}_file")
    env = f"{settings.model_config.get('env_prefix', '')}{name.upper()}"
    if name in load_config_section(settings.service_name):
        raise ValueError(
            f"{name} is in the config file {config_file()}: remove it, and set {env} or "
            f"{env}_FILE instead"
        )
    if value is not None and path is not None:
        raise ValueError(f"set {env} or {env}_FILE, not both")
    if path is not None:
        value = SecretStr(_read_secret_file(path, env))
    if value is None or not value.get_secret_value():
        if required:
            needed = f" by {required_by}" if required_by else ""
            raise ValueError(f"{name} is required{needed}: set {env} or {env}_FILE")
        value = None
    # The model is frozen; this fills in the value read from the file, once, at start-up.
    object.__setattr__(settings, name, value)


def _read_secret_file(path: Path, env: str) -> str:
    try:
        content = path.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise ValueError(f"{env}_FILE: cannot read {path}: {error.strerror}") from None
    if not content:
        raise ValueError(f"{env}_FILE: {path} is empty")
    return content
