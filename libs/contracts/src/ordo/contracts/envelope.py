"""The envelope every message carries, and the base class of all contracts."""

from typing import Any, ClassVar, Self

import uuid_utils
from pydantic import BaseModel, ConfigDict, Field

from ordo.contracts.types import UtcDatetime, utc_now


def new_message_id() -> str:
    """A unique, time-ordered id (UUIDv7): sorts by creation time, safe to generate anywhere."""
    return str(uuid_utils.uuid7())


class Contract(BaseModel):
    """A frozen value object; unknown fields are refused so that typos never pass silently."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)


class Message(Contract):
    """Base of every message: the envelope fields plus the schema's name and version.

    Commands are named imperatively (``CancelOrder``), events in the past tense (``OrderDenied``).
    A ``v1`` message only ever gains optional fields; a breaking change is a new ``v2`` message.
    """

    # Subclasses set these two; they are serialised into every message so that a reader can tell
    # what it holds without knowing the subject it came from.
    schema_name: ClassVar[str]
    schema_version: ClassVar[int] = 1

    message_id: str = Field(default_factory=new_message_id)
    occurred_at: UtcDatetime = Field(default_factory=utc_now)
    correlation_id: str = Field(min_length=1, description="The signal id that started the flow")
    causation_id: str | None = Field(default=None, description="The message that caused this one")
    producer: str = Field(min_length=1, description="The service that created the message")
    schema_: str = Field(default="", alias="schema", description="<schema_name>.v<version>")

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    def model_post_init(self, __context: Any) -> None:
        expected = self.schema_id()
        if self.schema_ and self.schema_ != expected:
            raise ValueError(f"schema {self.schema_!r} does not match {expected!r}")
        object.__setattr__(self, "schema_", expected)

    @classmethod
    def schema_id(cls) -> str:
        return f"{cls.schema_name}.v{cls.schema_version}"

    @classmethod
    def caused_by(cls, cause: "Message", *, producer: str, **fields: Any) -> Self:
        """A new message in the same flow as ``cause``: same correlation id, caused by it."""
        return cls(
            correlation_id=cause.correlation_id,
            causation_id=cause.message_id,
            producer=producer,
            **fields,
        )

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> Self:
        return cls.model_validate_json(data)
