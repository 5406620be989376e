"""What a caller without the secret can learn or cause: a short answer, and few, small rows."""

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from signal_support import (
    WEBHOOK_SECRET,
    SignalHarness,
    running_signal,
    signal_settings,
    template_alert,
)

from ordo.signal.guards import LocalRateLimiter, NoDedupeCache
from ordo.signal.http import HttpIntake, add_intake_routes, new_app
from ordo.signal.intake import Intake

WEBHOOK = "/v1/webhooks/tradingview"
JSON = {"Content-Type": "application/json"}


@pytest.fixture
async def signal(tmp_path: Path) -> AsyncIterator[SignalHarness]:
    async with running_signal(tmp_path) as harness:
        yield harness


async def test_a_wrong_secret_answers_401_whatever_else_is_wrong(signal: SignalHarness) -> None:
    response = await signal.post_alert(template_alert(secret="guess", action="hold", extra="x"))

    assert response.status_code == 401
    assert response.json() == {"detail": "invalid secret"}
    [rejection] = await signal.rejections()
    assert rejection["reason"] == "invalid_secret"


async def test_a_refusal_of_an_unauthenticated_caller_keeps_no_body(signal: SignalHarness) -> None:
    response = await signal.post_alert(template_alert(secret="guess", comment="x" * 400))

    assert response.status_code == 401
    [rejection] = await signal.rejections()
    assert rejection["raw_body"] is None


async def test_an_unreadable_body_without_the_secret_is_answered_but_not_kept(
    signal: SignalHarness,
) -> None:
    response = await signal.http.post(WEBHOOK, content=b'{"ticker": ' + b"x" * 4000, headers=JSON)

    assert response.status_code == 422
    [rejection] = await signal.rejections()
    assert rejection["field"] == "body"
    assert rejection["raw_body"] is None


async def test_an_unreadable_body_carrying_the_secret_is_kept_redacted(
    signal: SignalHarness,
) -> None:
    body = f'{{"secret": "{WEBHOOK_SECRET}", "close": {{{{close}}}}}}'.encode()

    response = await signal.http.post(WEBHOOK, content=body, headers=JSON)

    assert response.status_code == 422
    [rejection] = await signal.rejections()
    assert rejection["raw_body"] is not None
    assert "{{close}}" in rejection["raw_body"]
    assert WEBHOOK_SECRET not in rejection["raw_body"]


async def test_a_lone_surrogate_in_the_secret_is_refused_not_a_crash(
    signal: SignalHarness,
) -> None:
    response = await signal.post_alert(template_alert(secret="\ud800"))  # JSON: "\\ud800"

    assert response.status_code in (401, 422)
    assert len(await signal.rejections()) == 1


async def test_a_lone_surrogate_in_a_field_name_is_refused_not_a_crash(
    signal: SignalHarness,
) -> None:
    response = await signal.http.post(
        WEBHOOK, content=b'{"\\ud800": 1, "\\ud800": 2}', headers=JSON
    )

    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["field"] == "body"
    assert len(await signal.rejections()) == 1


async def test_unauthenticated_refusals_from_many_addresses_share_one_record_budget(
    tmp_path: Path,
) -> None:
    async with running_signal(tmp_path, rate_limit_per_minute=2) as signal:
        answers = []
        for n in range(4):
            async with signal.client_at(f"198.51.100.{n + 1}") as client:
                answers.append(await signal.post_alert(template_alert(secret="x"), client=client))

        assert [a.status_code for a in answers] == [401] * 4  # each address is within its limit
        assert len(await signal.rejections()) == 2  # but the rows are bounded for all of them


async def test_addresses_outside_the_allow_list_are_refused_before_the_rate_limit(
    tmp_path: Path,
) -> None:
    async with running_signal(tmp_path, rate_limit_per_minute=2, allowed_ips=("10.0.0.0/8",)) as s:
        answers = [await s.post_alert(template_alert()) for _ in range(3)]

        assert [a.status_code for a in answers] == [403, 403, 403]
        assert len(await s.rejections()) == 2  # recorded within the shared budget


async def test_a_flood_from_outside_the_allow_list_leaves_room_for_allowed_senders(
    tmp_path: Path,
) -> None:
    settings = signal_settings(tmp_path, allowed_ips=("10.0.0.0/8",))
    async with running_signal(tmp_path, allowed_ips=("10.0.0.0/8",)) as signal:
        intake = Intake(
            signal.kit.outbox,
            signal.kit.db,
            NoDedupeCache(),
            dedupe_window=timedelta(hours=1),
            rejection_retention=timedelta(days=1),
        )
        app = new_app()
        add_intake_routes(app, HttpIntake(settings, intake, LocalRateLimiter(10, max_clients=2)))

        async def post_from(address: str) -> int:
            transport = httpx.ASGITransport(app=app, client=(address, 40_000))
            async with httpx.AsyncClient(transport=transport, base_url="http://s.test") as http:
                response = await signal.post_alert(template_alert(), client=http)
                return response.status_code

        foreign = [await post_from(f"203.0.113.{n}") for n in range(1, 4)]
        allowed = await post_from("10.1.2.3")

        assert foreign == [403, 403, 403]
        assert allowed == 202


async def test_addresses_of_one_ipv6_network_share_a_rate_limit(tmp_path: Path) -> None:
    async with running_signal(tmp_path, rate_limit_per_minute=1) as signal:
        statuses = []
        for n in range(2):
            async with signal.client_at(f"2001:db8:1:2::{n + 1}") as client:
                alert = template_alert(order_id=f"Long-{n}")
                statuses.append((await signal.post_alert(alert, client=client)).status_code)

        assert statuses == [202, 429]
