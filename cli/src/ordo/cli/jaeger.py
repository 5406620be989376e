"""Traces from a Jaeger query API (docker-compose and Kubernetes), as the same :class:`Span` s.

``GET /api/traces/<trace-id>`` when the id is a trace id; otherwise a tag search for the id in
each of :data:`~ordo.cli.spans.ID_ATTRIBUTES`, service by service (Jaeger searches per service
and has no "any of these tags").
"""

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from ordo.cli.errors import CliError, RequestTimedOut, StackUnreachable
from ordo.cli.spans import ID_ATTRIBUTES, Span, normalise_id
from ordo.contracts.types import utc_now

SEARCH_LOOKBACK = timedelta(days=2)
SEARCH_LIMIT = 20


def fetch_spans(client: httpx.Client, base_url: str, wanted: str) -> list[Span]:
    """Every span of the traces Jaeger knows for ``wanted`` (a trace, signal or order id)."""
    base = base_url.rstrip("/")
    try:
        spans = _by_trace_id(client, base, wanted)
        if spans:
            return spans
        return _by_tag_search(client, base, wanted)
    except httpx.TimeoutException:
        raise RequestTimedOut(f"Jaeger at {base} did not answer in time") from None
    except httpx.HTTPError as error:
        raise StackUnreachable(f"cannot reach Jaeger at {base} ({type(error).__name__})") from None
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        # An HTML page (the UI behind a proxy, a login page) or another API on that address.
        raise CliError(
            f"{base} did not answer as Jaeger's query API does ({type(error).__name__}: {error}); "
            "give the query service's address, e.g. http://localhost:16686"
        ) from None


def _by_trace_id(client: httpx.Client, base: str, wanted: str) -> list[Span]:
    trace_id = normalise_id(wanted)
    if not trace_id or any(c not in "0123456789abcdef" for c in trace_id):
        return []  # a UUID signal id is no trace id; Jaeger would answer 400
    response = client.get(f"{base}/api/traces/{trace_id}")
    if response.status_code != 200:
        return []
    return spans_from_jaeger(response.json().get("data") or [])


def _by_tag_search(client: httpx.Client, base: str, wanted: str) -> list[Span]:
    response = client.get(f"{base}/api/services")
    response.raise_for_status()
    known = [str(s) for s in response.json().get("data") or []]
    services = [s for s in known if s.startswith("ordo")] or known
    end = utc_now()
    window: dict[str, str | int] = {
        "start": _microseconds(end - SEARCH_LOOKBACK),
        "end": _microseconds(end),
        "limit": SEARCH_LIMIT,
    }
    found: dict[tuple[str, str], Span] = {}
    for service in services:
        for key in ID_ATTRIBUTES:
            params = {**window, "service": service, "tags": json.dumps({key: wanted})}
            answer = client.get(f"{base}/api/traces", params=params)
            if answer.status_code != 200:
                continue
            for span in spans_from_jaeger(answer.json().get("data") or []):
                found[(span.trace_id, span.span_id)] = span
    return list(found.values())


def spans_from_jaeger(traces: Iterable[Mapping[str, Any]]) -> list[Span]:
    """Jaeger's JSON traces (``{"data": [...]}`` items) as spans."""
    spans = []
    for trace in traces:
        processes = trace.get("processes") or {}
        for item in trace.get("spans") or []:
            spans.append(_span(item, processes))
    return spans


def _span(item: Mapping[str, Any], processes: Mapping[str, Any]) -> Span:
    tags = {tag["key"]: tag.get("value") for tag in item.get("tags") or []}
    parent = next(
        (ref["spanID"] for ref in item.get("references") or [] if ref.get("refType") == "CHILD_OF"),
        None,
    )
    start = datetime.fromtimestamp(item["startTime"] / 1_000_000, UTC)
    process = processes.get(item.get("processID", ""), {})
    failed = tags.get("otel.status_code") == "ERROR" or tags.get("error") is True
    return Span(
        trace_id=normalise_id(item["traceID"]).rjust(32, "0"),
        span_id=normalise_id(item["spanID"]).rjust(16, "0"),
        parent_id=normalise_id(parent).rjust(16, "0") if parent else None,
        name=str(item.get("operationName", "?")),
        service=str(process.get("serviceName", "?")),
        start=start,
        end=start + timedelta(microseconds=int(item.get("duration", 0))),
        kind=str(tags.get("span.kind", "internal")).upper(),
        status="ERROR" if failed else str(tags.get("otel.status_code", "UNSET")),
        status_message=tags.get("otel.status_description"),
        attributes=tags,
    )


def _microseconds(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)
