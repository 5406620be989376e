"""The kit's HTTP server: the port it listens on, asked before, while and after it serves."""

import asyncio

from ordo.kit.http import HttpServer, ops_app
from ordo.kit.testing import eventually


def server() -> HttpServer:
    return HttpServer(ops_app("test"), "127.0.0.1", 0)


async def test_the_port_is_none_before_the_server_started() -> None:
    assert server().port is None


async def test_the_port_is_the_one_it_listens_on_while_it_serves_and_none_after() -> None:
    http = server()
    serving = asyncio.create_task(http.serve())

    async def listening() -> int | None:
        return http.port

    port = await eventually(listening, what="the server listening")
    _, writer = await asyncio.open_connection("127.0.0.1", port)  # really listening there
    writer.close()
    await writer.wait_closed()

    await http.stop()
    await serving
    assert http.port is None
