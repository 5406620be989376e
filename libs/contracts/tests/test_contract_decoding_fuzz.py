"""Hypothesis against contract decoding, for every message in ``ALL_MESSAGES``.

``Message.from_json`` is where every service reads what arrives; it has one documented way to
refuse, pydantic's ``ValidationError`` (the kit dead-letters such a message at once, while any
other exception is retried as if the handler had failed). The properties:

* arbitrary bytes, arbitrary JSON and documents generated from the committed JSON Schema decode
  to a message or raise ``ValidationError``, never anything else; and a decoded message
  re-encodes to a size of the order of what it was decoded from;
* documents generated from the committed schema that decode round-trip ``to_json`` →
  ``from_json`` unchanged;
* in such a message, a float for an amount, a datetime without a timezone, a missing required
  field or a value of the wrong type, anywhere in it, is always refused.
"""

import copy
import json
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from schemathesis import GenerationMode

from ordo.contracts.envelope import Message
from ordo.contracts.schemas import load_snapshot
from ordo.contracts.signals import SignalAccepted
from ordo.contracts.subjects import ALL_MESSAGES

NAMES = [m.schema_id() for m in ALL_MESSAGES]
Path = tuple[str | int, ...]

# Generation from the schemas is the slow part (nested objects of patterned strings): a few
# documents per message type, the same ones on every run.
FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Defaults, ids and timestamps that a decoder fills in make a message larger than its input, but
# never by more than this: an amount whose short text stands for megabytes would.
MAX_GROWTH_FACTOR = 10
MAX_GROWTH_BYTES = 4096

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=16,
)


# -- documents from the committed schemas -------------------------------------------------------


_SNAPSHOTS = {message.schema_id(): load_snapshot(message) for message in ALL_MESSAGES}


def committed_schema(message: type[Message]) -> dict[str, Any]:
    schema = _SNAPSHOTS[message.schema_id()]
    assert schema is not None, f"{message.schema_id()} has no committed schema snapshot"
    return schema


def schema_documents(schema: dict[str, Any], mode: GenerationMode) -> st.SearchStrategy[Any]:
    """JSON documents that follow the JSON Schema ``schema`` (or, negative, that break it).

    Schemathesis generates them, given the schema as the body of an API operation:
    hypothesis-jsonschema cannot generate objects with the Hypothesis version locked here (it
    calls a Hypothesis internal that has changed), while Schemathesis carries its own generator.
    """
    body = json.loads(json.dumps(schema).replace('"#/$defs/', '"#/components/schemas/'))
    definitions = body.pop("$defs", {})
    document = {
        "openapi": "3.1.0",
        "info": {"title": "contract", "version": "1"},
        "paths": {
            "/message": {
                "post": {
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": body}},
                    },
                    "responses": {"200": {"description": "decoded"}},
                }
            }
        },
        "components": {"schemas": definitions},
    }
    operation = schemathesis.openapi.from_dict(document)["/message"]["POST"]
    return operation.as_strategy(generation_mode=mode).map(lambda case: case.body)


# Decimal text as Ordo writes it (types.py), with the sign and size the schema's bounds allow.
_DECIMAL_TEXT = {
    "gt+lt": r"^[1-9][0-9]?(\.[0-9]{1,8})?$",  # a percentage: 0 < x < 100
    "gt": r"^[1-9][0-9]{0,8}(\.[0-9]{1,8})?(E[-+]?[0-9])?$",
    "ge": r"^[0-9]{1,9}(\.[0-9]{1,8})?(E[-+]?[0-9])?$",
    "": r"^-?[0-9]{1,9}(\.[0-9]{1,8})?(E[-+]?[0-9])?$",
}
_BASE64_TEXT = r"^([A-Za-z0-9+/]{4}){0,16}$"
_MAX_ITEMS = 2


def as_written(message: type[Message]) -> dict[str, Any]:
    """The committed schema, narrowed to what Ordo's own producers write.

    The schema allows a number or any text for a decimal, any text for base64 bytes and for the
    schema id; the contract refuses floats, text that is no number, and another message's schema
    id, so that documents generated from the schema as committed rarely decode. Narrowed to
    decimal text (never null, so that amounts are there to corrupt), base64 and the message's own
    id, most do. Lists hold one or two items: each item is checked alike, more only cost time,
    and an empty list would hide whatever its items carry (in a view, often the only amounts).
    """
    narrowed = _narrowed(copy.deepcopy(committed_schema(message)))
    narrowed["properties"]["schema"] = {"const": message.schema_id()}
    return narrowed


def _narrowed(node: Any) -> Any:
    if isinstance(node, list):
        return [_narrowed(item) for item in node]
    if not isinstance(node, dict):
        return node
    if _is_decimal(node):
        bounds = "+".join(bound for bound in ("gt", "ge", "lt") if bound in node)
        return {"type": "string", "pattern": _DECIMAL_TEXT[bounds]}
    if node.get("format") == "base64":
        return {"type": "string", "pattern": _BASE64_TEXT}
    narrowed = {key: _narrowed(value) for key, value in node.items()}
    if node.get("type") == "array":
        narrowed["minItems"] = max(1, node.get("minItems", 0))
        narrowed["maxItems"] = max(_MAX_ITEMS, node.get("minItems", 0))
    return narrowed


def _is_decimal(node: dict[str, Any]) -> bool:
    """How pydantic writes a ``Decimal``: a number or a string (or null)."""
    types = {option.get("type") for option in node.get("anyOf", ()) if isinstance(option, dict)}
    return {"number", "string"} <= types


def has_decimals(schema: Any) -> bool:
    if isinstance(schema, dict):
        return _is_decimal(schema) or any(has_decimals(value) for value in schema.values())
    if isinstance(schema, list):
        return any(has_decimals(item) for item in schema)
    return False


# -- decoding -----------------------------------------------------------------------------------


def wire(document: Any) -> bytes:
    # A negative body may already be bytes that are no JSON at all.
    return document if isinstance(document, bytes) else json.dumps(document).encode()


def decoded_or_refused(message: type[Message], data: bytes) -> Message | None:
    """``message.from_json(data)``, or None when it is refused with ``ValidationError``.

    Any other exception propagates and fails the test. A decoded message must re-encode to a
    size of the order of ``data``.
    """
    try:
        decoded = message.from_json(data)
    except ValidationError:
        return None
    assert type(decoded) is message
    assert len(decoded.to_json()) <= MAX_GROWTH_FACTOR * len(data) + MAX_GROWTH_BYTES
    return decoded


def assert_refused(message: type[Message], document: Any, why: str) -> None:
    try:
        message.from_json(json.dumps(document))
    except ValidationError:
        return
    pytest.fail(f"{message.schema_id()} accepted {why}: {document}")


# -- the paths of a decoded message -------------------------------------------------------------


def fields(value: object, path: Path = ()) -> Iterator[tuple[Path, object]]:
    """Every field of a decoded message, nested ones included, by its path in the message's JSON."""
    if isinstance(value, BaseModel):
        for name, field in type(value).model_fields.items():
            key = field.alias or name
            child = getattr(value, name)
            yield (*path, key), child
            yield from fields(child, (*path, key))
    elif isinstance(value, tuple | list):
        for index, item in enumerate(value):
            yield (*path, index), item
            yield from fields(item, (*path, index))


def required_fields(message: Message) -> list[Path]:
    models: list[tuple[Path, BaseModel]] = [((), message)]
    models += [(path, value) for path, value in fields(message) if isinstance(value, BaseModel)]
    return [
        (*path, field.alias or name)
        for path, model in models
        for name, field in type(model).model_fields.items()
        if field.is_required()
    ]


def replaced(document: Any, path: Path, value: object) -> Any:
    changed = copy.deepcopy(document)
    *parents, last = path
    target = changed
    for key in parents:
        target = target[key]
    target[last] = value
    return changed


def without(document: Any, path: Path) -> Any:
    changed = copy.deepcopy(document)
    *parents, last = path
    target = changed
    for key in parents:
        target = target[key]
    del target[last]
    return changed


def wrong_type(value: object) -> object:
    """A JSON value of a kind no lax reading turns into ``value``'s kind."""
    if isinstance(value, dict | list):
        return "not a collection"
    return {"not": ["a", "scalar"]}


NAIVE_TIMES = st.builds(
    lambda moment, spelling: spelling(moment),
    st.datetimes(),  # no timezone
    st.sampled_from(
        [
            datetime.isoformat,
            lambda moment: moment.isoformat(sep=" "),
            lambda moment: moment.strftime("%Y-%m-%dT%H:%M"),
        ]
    ),
)


# -- the properties -----------------------------------------------------------------------------


@settings(FUZZ, max_examples=300)
@given(message=st.sampled_from(ALL_MESSAGES), data=st.binary(max_size=512))
def test_arbitrary_bytes_decode_or_are_refused_as_invalid(
    message: type[Message], data: bytes
) -> None:
    decoded_or_refused(message, data)


def _shaped_like(message: type[Message]) -> st.SearchStrategy[Any]:
    """JSON objects with the message's own top-level fields, each holding any JSON value."""
    names = sorted(committed_schema(message)["properties"])
    return st.fixed_dictionaries({}, optional=dict.fromkeys(names, JSON_VALUES))


_VALID_ACCEPTED = {
    "correlation_id": "sig-1",
    "producer": "signal",
    "signal_id": "sig-1",
    "source": "api",
    "received_at": "2026-01-01T12:00:00Z",
    "signal": {
        "account": "main",
        "strategy": "demo",
        "venue": "paper",
        "symbol": "BTC/USDT",
        "intent": "enter_long",
        "size": {"unit": "quantity", "value": "0.5"},
    },
}


@settings(FUZZ, max_examples=200)
@given(
    case=st.sampled_from(ALL_MESSAGES).flatmap(
        lambda message: st.tuples(st.just(message), JSON_VALUES | _shaped_like(message))
    )
)
# Found while fuzzing: ten characters of amount became two million on the wire (and seconds of
# formatting); a time whose UTC falls before year 1 raised OverflowError instead of refusing.
@example(
    case=(SignalAccepted, replaced(_VALID_ACCEPTED, ("signal", "size", "value"), "1E-2000000"))
)
@example(case=(SignalAccepted, {**_VALID_ACCEPTED, "received_at": "0001-01-01T00:30:00+01:00"}))
def test_arbitrary_json_decodes_or_is_refused_as_invalid(case: tuple[type[Message], Any]) -> None:
    message, document = case
    decoded_or_refused(message, wire(document))


@pytest.mark.parametrize("message", ALL_MESSAGES, ids=NAMES)
def test_a_message_from_the_committed_schema_round_trips_and_its_corruptions_are_refused(
    message: type[Message],
) -> None:
    checked: Counter[str] = Counter()

    @settings(FUZZ, max_examples=8)
    @given(document=schema_documents(as_written(message), GenerationMode.POSITIVE), data=st.data())
    def check(document: Any, data: st.DataObject) -> None:
        decoded = decoded_or_refused(message, wire(document))
        checked["generated"] += 1
        if decoded is None:
            return
        checked["decoded"] += 1
        assert_round_trips(decoded)
        valid = json.loads(decoded.to_json())
        leaves = list(fields(decoded))
        amounts = [path for path, value in leaves if isinstance(value, Decimal)]
        if amounts:
            path, amount = data.draw(st.sampled_from(amounts)), data.draw(st.floats())
            assert_refused(message, replaced(valid, path, amount), f"the float {amount} at {path}")
            checked["float amount"] += 1
        times = [path for path, value in leaves if isinstance(value, datetime)]
        path, naive = data.draw(st.sampled_from(times)), data.draw(NAIVE_TIMES)
        assert_refused(message, replaced(valid, path, naive), f"the naive time {naive} at {path}")
        path = data.draw(st.sampled_from(required_fields(decoded)))
        assert_refused(message, without(valid, path), f"no {path}")
        path = data.draw(st.sampled_from([path for path, _ in leaves]))
        value = wrong_type(_at(valid, path))
        assert_refused(message, replaced(valid, path, value), f"{value!r} at {path}")

    check()
    # The properties hold of something: many documents written as Ordo writes them decode (the
    # rest break rules that the schema cannot say, such as a limit order without a price), and
    # amounts were among the fields corrupted wherever the message has any.
    assert 4 * checked["decoded"] >= checked["generated"], checked
    if has_decimals(committed_schema(message)):
        assert checked["float amount"], f"no {message.schema_id()} carried an amount"


def assert_round_trips(decoded: Message) -> None:
    again = type(decoded).from_json(decoded.to_json())
    assert again == decoded
    assert again.to_json() == decoded.to_json()


def _at(document: Any, path: Path) -> Any:
    for key in path:
        document = document[key]
    return document
