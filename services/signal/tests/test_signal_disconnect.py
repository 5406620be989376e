"""A caller that hangs up before its whole body arrived: logged quietly, nothing recorded, no
"Exception in ASGI application" from the server."""

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from signal_support import API_TOKEN, SignalHarness, running_signal
from structlog.testing import capture_logs

from ordo.kit.http import HttpServer
from ordo.kit.testing import eventually

WEBHOOK = "/v1/webhooks/tradingview"
API = "/v1/signals"
DECLARED_LENGTH = 400
PART_OF_THE_BODY = b'{"secret": "tv-webh'


def request_scope(path: str) -> dict[str, Any]:
    """An HTTP call as the server hands it to the app: a body of DECLARED_LENGTH to come."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"signal.test"),
            (b"content-type", b"application/json"),
            (b"content-length", str(DECLARED_LENGTH).encode()),
            (b"authorization", f"Bearer {API_TOKEN}".encode()),
        ],
        "client": ("127.0.0.1", 40_000),
        "server": ("signal.test", 80),
    }


async def nothing_recorded(harness: SignalHarness) -> None:
    assert await harness.signals() == []
    assert await harness.rejections() == []
    assert await harness.outbox() == []


@pytest.mark.parametrize("path", [WEBHOOK, API])
async def test_a_caller_hanging_up_mid_body_is_logged_quietly_and_leaves_nothing(
    path: str, tmp_path: Path
) -> None:
    arriving: list[dict[str, Any]] = [
        {"type": "http.request", "body": PART_OF_THE_BODY, "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return arriving.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async with running_signal(tmp_path) as harness:
        with capture_logs() as logs:
            await harness.kit.http_app(request_scope(path), receive, send)  # raises nothing

        (hung_up,) = [e for e in logs if e["event"] == "caller hung up before its body arrived"]
        assert hung_up["log_level"] == "info"
        assert hung_up["remote"] == "127.0.0.1"
        assert [e for e in logs if e["log_level"] in {"error", "critical"}] == []
        assert sent[0]["status"] == 499  # seen by no one but the span and the logs
        await nothing_recorded(harness)


async def test_the_server_logs_no_error_when_a_caller_hangs_up_mid_body(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_signal(tmp_path) as harness:
        server = HttpServer(harness.kit.http_app, "127.0.0.1", 0)
        serving = asyncio.create_task(server.serve())
        try:

            async def listening() -> int | None:
                return server.port

            port = await eventually(listening, what="the HTTP server listening")
            with (
                capture_logs() as logs,
                caplog.at_level(logging.ERROR, logger="uvicorn.error"),
            ):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                head = (
                    f"POST {WEBHOOK} HTTP/1.1\r\nHost: signal.test\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {DECLARED_LENGTH}\r\n\r\n"
                )
                writer.write(head.encode() + PART_OF_THE_BODY)
                await writer.drain()
                writer.close()
                await writer.wait_closed()

                def server_errors() -> list[str]:
                    return [r.getMessage() for r in caplog.records if r.name == "uvicorn.error"]

                async def handled() -> bool:
                    hung_up = any(
                        e["event"] == "caller hung up before its body arrived" for e in logs
                    )
                    return hung_up or bool(server_errors())

                await eventually(handled, what="the call handled")
            assert server_errors() == []
            await nothing_recorded(harness)
        finally:
            await server.stop()
            await serving
