"""``ordo status`` shows each venue account's breaker and halt, as the execution service says."""

import httpx
from rich.console import Console

from ordo.cli.client import ServiceEntry
from ordo.cli.venues import VenueReport, venue_health, venues_table
from ordo.contracts.enums import BreakerState

EXECUTION = ServiceEntry("execution", "http://127.0.0.1:9101")
VENUES = [
    {"venue": "paper", "account": "main", "breaker": "closed", "halted": False, "reason": None},
    {
        "venue": "ccxt:binance",
        "account": "desk",
        "breaker": "open",
        "halted": True,
        "reason": "credentials refused: Invalid API-key",
    },
]


def client(handler: httpx.MockTransport) -> httpx.Client:
    return httpx.Client(transport=handler)


def test_the_venues_come_from_the_execution_services_endpoint() -> None:
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return httpx.Response(200, json=VENUES)

    report = venue_health(client(httpx.MockTransport(answer)), [EXECUTION])

    assert asked == ["http://127.0.0.1:9101/venues"]
    assert report is not None and report.error is None
    desk = report.venues[1]
    assert (desk.venue, desk.breaker, desk.halted) == ("ccxt:binance", BreakerState.OPEN, True)
    assert desk.as_json()["breaker"] == "open"


def test_a_stack_without_the_execution_service_has_no_venue_report() -> None:
    other = ServiceEntry("order", "http://127.0.0.1:9102")

    assert venue_health(client(httpx.MockTransport(lambda r: httpx.Response(500))), [other]) is None


def test_an_execution_service_that_does_not_answer_is_reported_not_hidden() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    report = venue_health(client(httpx.MockTransport(refuse)), [EXECUTION])

    assert report == VenueReport(error="ConnectError: connection refused")


def test_the_table_shows_the_breaker_and_why_trading_is_halted() -> None:
    report = venue_health(
        client(httpx.MockTransport(lambda r: httpx.Response(200, json=VENUES))), [EXECUTION]
    )
    assert report is not None
    console = Console(width=160, record=True)

    console.print(venues_table(report))

    text = console.export_text()
    assert "ccxt:binance" in text and "open" in text
    assert "halted: credentials refused: Invalid API-key" in text
