"""The ops HTTP endpoints every service serves: liveness, readiness and Prometheus metrics."""

import contextlib
from collections.abc import Awaitable, Callable

import uvicorn
from fastapi import APIRouter, FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST

ReadinessCheck = Callable[[], Awaitable[dict[str, bool]]]
Exposition = Callable[[], Awaitable[bytes]]


def ops_router(
    exposition: Exposition, readiness: ReadinessCheck, liveness: Callable[[], bool]
) -> APIRouter:
    router = APIRouter(tags=["ops"])

    @router.get("/healthz", summary="Liveness: the process and its background tasks run")
    async def healthz(response: Response) -> dict[str, str]:
        alive = liveness()
        response.status_code = 200 if alive else 503
        return {"status": "ok" if alive else "failing"}

    @router.get("/readyz", summary="Readiness: NATS and the store answer")
    async def readyz(response: Response) -> dict[str, object]:
        checks = await readiness()
        ready = all(checks.values())
        response.status_code = 200 if ready else 503
        return {"status": "ready" if ready else "not ready", "checks": checks}

    @router.get("/metrics", summary="Prometheus metrics")
    async def metrics() -> Response:
        return Response(await exposition(), media_type=CONTENT_TYPE_LATEST)

    return router


def ops_app(service: str) -> FastAPI:
    """The HTTP app of a service that serves nothing but the ops endpoints."""
    return FastAPI(title=f"ordo-{service} ops", docs_url=None, redoc_url=None)


class HttpServer:
    """uvicorn, run inside the service's event loop; reports the port it bound."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        config = uvicorn.Config(
            app, host=host, port=port, log_config=None, access_log=False, lifespan="off"
        )
        self._server = uvicorn.Server(config)
        # The service owns SIGINT/SIGTERM and stops uvicorn itself; uvicorn must not take them.
        self._server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]

    async def serve(self) -> None:
        await self._server.serve()

    @property
    def started(self) -> bool:
        return bool(self._server.started)

    @property
    def port(self) -> int | None:
        """The port the server listens on; None until it has started (and once it stopped)."""
        if not self.started:  # uvicorn has no list of listening servers before it starts
            return None
        for server in self._server.servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return None

    async def stop(self) -> None:
        self._server.should_exit = True
