"""Schemathesis against the signal service's OpenAPI schema, over HTTP, on a real NATS JetStream.

The service runs as it does in production (uvicorn, its SQLite store, its own NATS user) in a
thread of this process. Each route of ``/v1`` gets calls generated from the schema, bodies,
headers and paths that follow it and ones that break it, and sends each of them three ways: as
generated; with the right secret or token; and with them, well formed where the schema cannot
say (a market the service lists, amounts as decimal text, a complete order) or reading a signal
that exists. So the calls get past the credential gate, and many are accepted. For every call:

* never a 5xx; the status, the content type, the headers and the body are the ones the schema
  documents for the route; a route behind the bearer token refuses the same call without it;
* a refused call (4xx) publishes nothing on the SIGNALS stream and leaves nothing in the outbox;
* an accepted call (202) publishes exactly one ``SignalAccepted``, the one of the signal id it
  answered; sent again, it is a repeat (200) of that signal and publishes nothing.
"""

import asyncio
import threading
from collections import Counter
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple, TypeVar

import nats
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from nats.aio.client import Client as NatsClient
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    ignored_auth,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from signal_support import API_TOKEN, WEBHOOK_SECRET, api_body, bearer, signal_settings
from sqlalchemy import func, select

from ordo.contracts.enums import SignalSource
from ordo.contracts.signals import SignalAccepted
from ordo.contracts.subjects import STREAM_OF_SUBJECT, Service, Subject
from ordo.kit.embedded import NatsServer
from ordo.kit.service import ServiceKit
from ordo.kit.settings import NatsSettings
from ordo.kit.testing import eventually
from ordo.signal import store
from ordo.signal.app import build

T = TypeVar("T")

WEBHOOK = "/v1/webhooks/tradingview"
API = "/v1/signals"
SHOW = "/v1/signals/{signal_id}"
SIGNALS_STREAM = STREAM_OF_SUBJECT[Subject.SIGNAL_ACCEPTED]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    ignored_auth,
]
# Generated calls per route (each sent three ways): enough to be accepted and refused in every
# way a route can, few enough for a busy two-core machine.
CALLS_PER_ROUTE = {WEBHOOK: 40, API: 40, SHOW: 20}
# The answers each route must have given, or the fuzzer did not get where it matters.
EXPECTED_ANSWERS = {WEBHOOK: {200, 202, 401, 422}, API: {200, 202, 401, 422}, SHOW: {200, 401, 404}}
# Only so that a hung service fails the test instead of hanging it; no answer takes near this.
TIMEOUT_SECONDS = 60


class ServiceLoop:
    """An event loop in a thread of its own: the service runs there while the fuzzer calls it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="signal-service")
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(TIMEOUT_SECONDS)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


@dataclass
class RunningSignal:
    kit: ServiceKit
    base_url: str
    service_loop: ServiceLoop
    admin: NatsClient
    existing_signal_id: str = ""  # a signal accepted before the fuzzing, for the reads

    def published(self) -> Counter[str]:
        """How many messages each subject of the SIGNALS stream holds."""

        async def count() -> Counter[str]:
            info = await self.admin.jetstream().stream_info(SIGNALS_STREAM, subjects_filter=">")
            return Counter(info.state.subjects or {})

        return self.service_loop.run(count())

    def published_once_more(self, before: Counter[str]) -> Counter[str]:
        """The subjects' counts once SignalAccepted's has grown past ``before``'s.

        The publish follows the commit, before the answer; should it fail, the outbox sweeper
        publishes later, which is still "published": so this waits, with a deadline.
        """

        async def grown() -> Counter[str] | None:
            info = await self.admin.jetstream().stream_info(SIGNALS_STREAM, subjects_filter=">")
            now = Counter(info.state.subjects or {})
            accepted = str(Subject.SIGNAL_ACCEPTED)
            return now if now[accepted] > before[accepted] else None

        return self.service_loop.run(eventually(grown, what="SignalAccepted published"))

    def latest_accepted(self) -> SignalAccepted:
        async def latest() -> bytes:
            js = self.admin.jetstream()
            message = await js.get_last_msg(SIGNALS_STREAM, str(Subject.SIGNAL_ACCEPTED))
            return message.data or b""

        return SignalAccepted.from_json(self.service_loop.run(latest()))

    def outbox_rows(self) -> int:
        outbox = store.messaging.outbox

        async def count() -> int:
            async with self.kit.db.session() as session:
                return int(await session.scalar(select(func.count()).select_from(outbox)) or 0)

        return self.service_loop.run(count())


@pytest.fixture(scope="module")
def signal_service(
    nats_server: NatsServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningSignal]:
    user = nats_server.credentials.for_service(Service.SIGNAL)
    admin = nats_server.credentials.admin
    settings_ = signal_settings(
        tmp_path_factory.mktemp("signal-fuzz"),
        nats=NatsSettings(url=nats_server.url, user=user.name, password=user.password),
        # Every call comes from 127.0.0.1: a limit would turn most of them into 429s.
        rate_limit_per_minute=1_000_000,
    )
    kit = build(settings_, telemetry=False)
    service_loop = ServiceLoop()

    async def start() -> tuple[int, NatsClient]:
        await kit.db.create_all(store.metadata)
        await kit.start(migrate=False)

        async def port() -> int | None:
            return kit.http.port if kit.http is not None else None

        listening = await eventually(port, what="the signal service listening")
        client = await nats.connect(nats_server.url, user=admin.name, password=admin.password)
        return listening, client

    port, admin_client = service_loop.run(start())
    service = RunningSignal(kit, f"http://127.0.0.1:{port}", service_loop, admin_client)
    try:
        first = requests.post(
            f"{service.base_url}{API}",
            json=api_body("fuzz-existing"),
            headers=bearer(),
            timeout=TIMEOUT_SECONDS,
        )
        assert first.status_code == 202, first.text
        service.existing_signal_id = first.json()["signal_id"]
        yield service
    finally:
        service_loop.run(admin_client.drain())
        service_loop.run(kit.stop())
        service_loop.close()


# -- the calls --------------------------------------------------------------------------------


def intake_schema(kit: ServiceKit) -> schemathesis.BaseSchema:
    """The service's own OpenAPI document, its ``/v1`` routes (the ops routes take no input)."""
    return schemathesis.openapi.from_dict(kit.http_app.openapi()).include(path_regex="^/v1/")


class Call(NamedTuple):
    case: Case
    headers: dict[str, str]
    reads_the_existing_signal: bool = False


# Tickers and symbols that signal_support's markets list, in the spellings senders use.
KNOWN_TICKERS = st.sampled_from(("BTCUSDT", "BINANCE:BTCUSDT", "BTCUSDT.P", "ETHUSDT", "ETH/USDT"))
AMOUNTS = st.decimals(min_value=Decimal("0.001"), max_value=Decimal(100_000), places=3).map(str)
# What TradingView sends for an entry or an exit: action, market position, previous position.
ORDERS = st.sampled_from(
    [
        {"action": "buy", "market_position": "long", "prev_market_position": "flat"},
        {"action": "sell", "market_position": "short", "prev_market_position": "flat"},
        {"action": "sell", "market_position": "flat", "prev_market_position": "long"},
        {"action": "buy", "market_position": "flat", "prev_market_position": "short"},
    ]
)
SIZE_UNITS = st.sampled_from(["quantity", "quote", "percent_equity"])


@st.composite
def calls(draw: st.DrawFn, operation: APIOperation) -> list[Call]:
    """A call generated from the schema, sent as generated, with credentials, and well formed.

    (Schemathesis keeps the token off a negative call that is about the header's absence.)
    """
    mode = draw(st.sampled_from([GenerationMode.POSITIVE, GenerationMode.NEGATIVE]))
    case = draw(operation.as_strategy(generation_mode=mode))
    as_generated = Call(case, {})
    token = bearer(API_TOKEN)
    if case.path == SHOW:
        return [
            as_generated,
            Call(case.derive(), token),
            Call(case.derive(), token, reads_the_existing_signal=True),
        ]
    body = case.body
    if case.path == WEBHOOK and isinstance(body, str):
        with_secret = case.derive()
        with_secret.body = f"secret={WEBHOOK_SECRET}\n{body}"
        return [as_generated, Call(with_secret, {})]
    if not isinstance(body, dict):
        return (
            [as_generated] if case.path == WEBHOOK else [as_generated, Call(case.derive(), token)]
        )
    if case.path == WEBHOOK:
        # The secret goes in the body (TradingView cannot set headers).
        with_secret, alert = case.derive(), case.derive()
        with_secret.body = {**body, "secret": WEBHOOK_SECRET}
        alert.body = {**with_secret.body, **_well_formed_alert(body, draw)}
        return [as_generated, Call(with_secret, {}), Call(alert, {})]
    signal = body.get("signal")
    if not isinstance(signal, dict):
        return [as_generated, Call(case.derive(), token)]
    well_formed = case.derive()
    well_formed.body = {**body, "signal": {**signal, **_well_formed_signal(signal, draw)}}
    return [as_generated, Call(case.derive(), token), Call(well_formed, token)]


def _well_formed_alert(alert: dict[str, Any], draw: st.DrawFn) -> dict[str, Any]:
    present = [name for name in ("position_size", "close", "stop") if name in alert]
    return {
        **{name: draw(AMOUNTS) for name in present},
        **draw(ORDERS),
        "contracts": draw(AMOUNTS),
        "ticker": draw(KNOWN_TICKERS),
        "venue": "paper",
    }


def _well_formed_signal(signal: dict[str, Any], draw: st.DrawFn) -> dict[str, Any]:
    present = [name for name in ("reference_price", "stop_price") if signal.get(name)]
    return {
        **{name: draw(AMOUNTS) for name in present},
        "size": {"unit": draw(SIZE_UNITS), "value": draw(AMOUNTS)},
        "venue": "paper",
        "symbol": draw(KNOWN_TICKERS),
    }


def tiny_amount_calls(operation: APIOperation) -> list[Call]:
    """Found while fuzzing: a 10-character amount that is 2 MB as plain text.

    It took seconds to format and was accepted (202), but its SignalAccepted exceeded the NATS
    payload limit: never published, retried by the outbox for ever. The contracts refuse it now
    (more than 60 decimal places), so the call is refused (422).
    """
    body = api_body("tiny-amount", size={"unit": "quote", "value": "1E-2000000"})
    case = operation.Case(body=body, media_type="application/json")
    return [Call(case, bearer(API_TOKEN))]


REGRESSIONS = {API: [tiny_amount_calls]}


# -- the test ---------------------------------------------------------------------------------


@dataclass
class Fuzzing:
    """Sends calls to the running service, checks each answer and what it published."""

    service: RunningSignal
    answers: Counter[int] = field(default_factory=Counter)
    http: requests.Session = field(default_factory=requests.Session)

    def send(self, call: Call) -> None:
        case = call.case
        if call.reads_the_existing_signal:
            case.path_parameters = {"signal_id": self.service.existing_signal_id}
        published, outbox = self.service.published(), self.service.outbox_rows()

        response = self._call(case, call.headers)

        self.answers[response.status_code] += 1
        if case.method == "POST" and response.status_code == 202:
            published = self._announced(case, response.json()["signal_id"], published)
            outbox += 1
            # The sender retries (it never saw the answer): the first signal, nothing new.
            again = self._call(case, call.headers)
            self.answers[again.status_code] += 1
            assert again.status_code == 200
            assert again.json() == {"signal_id": response.json()["signal_id"], "duplicate": True}
        # Refused, a repeat or a read: nothing published, nothing waiting in the outbox.
        assert self.service.published() == published
        assert self.service.outbox_rows() == outbox

    def _call(self, case: Case, headers: dict[str, str]) -> schemathesis.Response:
        return case.call_and_validate(
            base_url=self.service.base_url,
            session=self.http,
            headers=headers,
            checks=CHECKS,
            timeout=TIMEOUT_SECONDS,
        )

    def _announced(self, case: Case, signal_id: str, before: Counter[str]) -> Counter[str]:
        """Checks that the one SignalAccepted of ``signal_id`` was published; the new counts."""
        after = self.service.published_once_more(before)
        assert after - before == Counter({str(Subject.SIGNAL_ACCEPTED): 1})
        announced = self.service.latest_accepted()
        assert announced.signal_id == announced.correlation_id == signal_id
        source = SignalSource.TRADINGVIEW if case.path == WEBHOOK else SignalSource.API
        assert announced.source is source
        return after


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", WEBHOOK), ("POST", API), ("GET", SHOW)],
    ids=["webhook", "api", "read"],
)
def test_no_call_gets_a_server_error_and_only_an_accepted_one_publishes(
    signal_service: RunningSignal, method: str, path: str
) -> None:
    operation = intake_schema(signal_service.kit)[path][method]
    fuzzing = Fuzzing(signal_service)

    @settings(
        max_examples=CALLS_PER_ROUTE[path],
        derandomize=True,  # the same calls on every run: CI is reproducible
        database=None,
        deadline=None,  # a fuzzer asserts behaviour, not timing
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(generated=calls(operation))
    def send_each_way(generated: list[Call]) -> None:
        for call in generated:
            fuzzing.send(call)

    for regression in REGRESSIONS.get(path, []):
        send_each_way = example(generated=regression(operation))(send_each_way)
    send_each_way()

    # The fuzzer got where it matters: past the credentials, to acceptance and its repeat, and
    # to refusals for want of credentials and for bad input (reads: of signals that exist).
    missing = EXPECTED_ANSWERS[path] - set(fuzzing.answers)
    assert not missing, f"{path} never answered {sorted(missing)}: {dict(fuzzing.answers)}"
