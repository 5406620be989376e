"""JSON Schema snapshots of every released message, and the backward-compatibility rule.

A released ``v1`` message only ever gains optional fields. ``python -m ordo.contracts.schemas``
records the current schemas in ``libs/contracts/schemas/``, and refuses to overwrite a snapshot
with an incompatible change: that change needs a new ``v2`` message instead.
"""

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ordo.contracts.envelope import Message
from ordo.contracts.subjects import ALL_MESSAGES

SNAPSHOT_DIR = Path(__file__).resolve().parents[3] / "schemas"


def current_schema(message: type[Message]) -> dict[str, Any]:
    return message.model_json_schema(by_alias=True, mode="validation")


def snapshot_path(message: type[Message]) -> Path:
    return SNAPSHOT_DIR / f"{message.schema_id()}.json"


def load_snapshot(message: type[Message]) -> dict[str, Any] | None:
    path = snapshot_path(message)
    return json.loads(path.read_text()) if path.exists() else None


def incompatibilities(released: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """What in ``current`` would break a reader or writer of ``released``; empty if nothing."""
    return list(
        _compare(released, current, released.get("$defs", {}), current.get("$defs", {}), "$")
    )


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return _resolve(defs[ref.removeprefix("#/$defs/")], defs)
    return schema


def _compare(
    old: dict[str, Any],
    new: dict[str, Any],
    old_defs: dict[str, Any],
    new_defs: dict[str, Any],
    path: str,
) -> Iterator[str]:
    old, new = _resolve(old, old_defs), _resolve(new, new_defs)
    if "properties" in old or "properties" in new:
        old_props, new_props = old.get("properties", {}), new.get("properties", {})
        for name in old_props:
            if name not in new_props:
                yield f"{path}.{name}: field removed"
            else:
                yield from _compare(
                    old_props[name], new_props[name], old_defs, new_defs, f"{path}.{name}"
                )
        for name in set(new.get("required", [])) - set(old.get("required", [])):
            yield f"{path}.{name}: field is newly required"
        return
    if "enum" in old or "enum" in new:
        removed = set(old.get("enum", [])) - set(new.get("enum", []))
        if removed:
            yield f"{path}: enum values removed {sorted(map(str, removed))}"
        return
    for key in ("anyOf", "oneOf"):
        if key in old or key in new:
            old_options, new_options = old.get(key, [old]), new.get(key, [new])
            for index, option in enumerate(old_options):
                if not any(
                    not list(_compare(option, candidate, old_defs, new_defs, path))
                    for candidate in new_options
                ):
                    yield f"{path}: option {index} of {key} no longer accepted"
            return
    if "items" in old or "items" in new:
        yield from _compare(
            old.get("items", {}), new.get("items", {}), old_defs, new_defs, f"{path}[]"
        )
    if "prefixItems" in old or "prefixItems" in new:
        old_items, new_items = old.get("prefixItems", []), new.get("prefixItems", [])
        if len(old_items) != len(new_items):
            yield f"{path}: tuple length changed"
        for index, (a, b) in enumerate(zip(old_items, new_items, strict=False)):
            yield from _compare(a, b, old_defs, new_defs, f"{path}[{index}]")
    for keyword in ("type", "const", "format", "pattern"):
        if old.get(keyword) != new.get(keyword):
            yield f"{path}: {keyword} changed from {old.get(keyword)!r} to {new.get(keyword)!r}"


def write_snapshots() -> list[str]:
    """Record every message's schema; refuse incompatible changes. Returns what was written."""
    SNAPSHOT_DIR.mkdir(parents=True, exist_ok=True)
    written, refused = [], []
    for message in ALL_MESSAGES:
        schema, released = current_schema(message), load_snapshot(message)
        if released == schema:
            continue
        problems = incompatibilities(released, schema) if released else []
        if problems:
            refused.append(f"{message.schema_id()}: " + "; ".join(problems))
            continue
        snapshot_path(message).write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(message.schema_id())
    if refused:
        raise SystemExit(
            "incompatible changes to released messages (make a v2 instead):\n" + "\n".join(refused)
        )
    return written


if __name__ == "__main__":
    for name in write_snapshots():
        sys.stdout.write(f"recorded {name}\n")
