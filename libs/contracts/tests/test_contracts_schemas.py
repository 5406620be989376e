"""Released messages stay backward compatible; their schema snapshots are committed and current."""

import copy
from typing import Any

import pytest

from ordo.contracts.envelope import Message
from ordo.contracts.schemas import current_schema, incompatibilities, load_snapshot
from ordo.contracts.signals import SignalAccepted
from ordo.contracts.subjects import ALL_MESSAGES

NAMES = [m.schema_id() for m in ALL_MESSAGES]


@pytest.mark.parametrize("message", ALL_MESSAGES, ids=NAMES)
def test_every_message_is_backward_compatible_with_its_released_schema(
    message: type[Message],
) -> None:
    released = load_snapshot(message)
    assert released is not None, (
        f"{message.schema_id()} has no committed schema snapshot: run "
        "`.venv/bin/python -m ordo.contracts.schemas`"
    )
    assert incompatibilities(released, current_schema(message)) == []


@pytest.mark.parametrize("message", ALL_MESSAGES, ids=NAMES)
def test_the_committed_snapshot_is_current(message: type[Message]) -> None:
    assert load_snapshot(message) == current_schema(message), (
        f"{message.schema_id()} changed compatibly: record it with "
        "`.venv/bin/python -m ordo.contracts.schemas`"
    )


def released() -> dict[str, Any]:
    return copy.deepcopy(current_schema(SignalAccepted))


def test_removing_a_field_is_incompatible() -> None:
    changed = released()
    del changed["properties"]["signal_id"]
    assert incompatibilities(released(), changed) == ["$.signal_id: field removed"]


def test_a_new_required_field_is_incompatible() -> None:
    changed = released()
    changed["properties"]["venue_hint"] = {"type": "string"}
    changed["required"].append("venue_hint")
    assert incompatibilities(released(), changed) == ["$.venue_hint: field is newly required"]


def test_a_new_optional_field_is_compatible() -> None:
    changed = released()
    changed["properties"]["venue_hint"] = {"anyOf": [{"type": "string"}, {"type": "null"}]}
    assert incompatibilities(released(), changed) == []


def test_changing_a_field_type_is_incompatible() -> None:
    changed = released()
    changed["properties"]["signal_id"] = {"type": "integer"}
    assert incompatibilities(released(), changed) == [
        "$.signal_id: type changed from 'string' to 'integer'"
    ]


def test_removing_an_enum_value_in_a_nested_model_is_incompatible() -> None:
    changed = released()
    intent = changed["$defs"]["Intent"]
    intent["enum"] = [value for value in intent["enum"] if value != "reverse"]
    assert incompatibilities(released(), changed) == [
        "$.signal.intent: enum values removed ['reverse']"
    ]
