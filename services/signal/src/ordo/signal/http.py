"""The HTTP intake: TradingView webhooks and the authenticated signal API (OpenAPI at /docs).

Every call passes the same gates, cheapest first: the address allow-list (403), the rate limit
per client (429), the credentials (401), the body size, checked before anything parses the body
(413), then the domain's validation (422 naming the field and the reason). A refusal leaves
nothing behind but a rejection record; the refusals of callers who proved no credential keep no
body and share one budget of records per minute, so that a flood from many addresses does not
become a flood of rows. An accepted signal answers 202 with its id; a repeat of one answers 200
with the FIRST signal's id and ``"duplicate": true``, and creates nothing new (200, not 202:
nothing was accepted this time); a different signal under a key already in use answers 409. A
caller that hangs up before its whole body arrived is not an error of ours: it is logged, not
recorded, and nobody is left to answer.
"""

from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Request, Response, Security
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from opentelemetry import trace
from pydantic import AwareDatetime, BaseModel
from starlette.requests import ClientDisconnect

from ordo.contracts.enums import SignalSource
from ordo.contracts.signals import SignalRequest
from ordo.kit.logs import get_logger
from ordo.signal.config import SignalSettings
from ordo.signal.domain import (
    AlertError,
    KeyReused,
    SignalApiRequest,
    SignalError,
    TradingViewAlert,
    alert_from_fields,
    alert_secret,
    alert_venue,
    dedupe_key,
    dedupe_key_field,
    hmac_signature_valid,
    normalise_signal,
    parse_api_request,
    read_alert_fields,
    redact,
    request_dedupe_key,
    secret_matches,
    to_signal_request,
    venue_markets,
)
from ordo.signal.guards import AddressAllowList, RateLimiter, rate_limit_client
from ordo.signal.intake import Incoming, Intake, Refusal, RejectionReason
from ordo.signal.store import DedupeContention

log = get_logger(__name__)

SIGNATURE_HEADER = "X-Ordo-Signature"
# The status of a call whose caller hung up (nginx's): only the span and the logs ever see it.
CLIENT_CLOSED_REQUEST = 499
# The rate limiter's budget that every caller without credentials shares for its refusal records.
UNAUTHENTICATED_REFUSALS = "unauthenticated-refusals"
TITLE = "Ordo signal intake"
DESCRIPTION = """\
Signals in: TradingView strategy alerts (`POST /v1/webhooks/tradingview`, the shared secret in
the body) and the signal API (`POST /v1/signals`, a bearer token).

* **202** `{"signal_id": ..., "duplicate": false}`: accepted; `SignalAccepted` is published with
  the signal id as its correlation id.
* **200** `{"signal_id": <the first one>, "duplicate": true}`: a repeat of an alert (or of an
  idempotency key) within the dedupe window; nothing new is recorded or published.
* **401** bad secret, token or signature (nothing else is checked before the secret);
  **403** address not allowed; **409** the idempotency key (or alert id) already names a
  different signal; **413** body too large; **422** `{"detail": [{"field": ..., "reason": ...}]}`;
  **429** too many calls (`Retry-After`).
"""

TEMPLATE_EXAMPLE = {
    "secret": "<your webhook secret>",
    "ticker": "{{ticker}}",
    "exchange": "{{exchange}}",
    "action": "{{strategy.order.action}}",
    "contracts": "{{strategy.order.contracts}}",
    "position_size": "{{strategy.position_size}}",
    "market_position": "{{strategy.market_position}}",
    "prev_market_position": "{{strategy.prev_market_position}}",
    "order_id": "{{strategy.order.id}}",
    "comment": "{{strategy.order.comment}}",
    "close": "{{close}}",
    "timenow": "{{timenow}}",
    "interval": "{{interval}}",
    "account": "main",
    "strategy": "my-strategy",
}


# -- response bodies ----------------------------------------------------------------------------


class IntakeAnswer(BaseModel):
    signal_id: str
    duplicate: bool


class FieldProblem(BaseModel):
    field: str
    reason: str


class InvalidInput(BaseModel):
    detail: list[FieldProblem]


class Problem(BaseModel):
    detail: str


class SignalView(BaseModel):
    signal_id: str
    source: SignalSource
    dedupe_key: str
    received_at: AwareDatetime
    signal: SignalRequest


_REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Invalid secret, token or signature"},
    403: {"model": Problem, "description": "The client address is not allowed"},
    409: {
        "model": InvalidInput,
        "description": "The idempotency key (or alert id) already names a different signal",
    },
    413: {"model": Problem, "description": "The body is larger than max_body_bytes"},
    422: {"model": InvalidInput, "description": "Malformed input: the field and the reason"},
    429: {"model": Problem, "description": "Too many calls from this address this minute"},
}
_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"model": IntakeAnswer, "description": "A repeat: the first signal's id, duplicate"},
    **_REFUSALS,
}


# -- refusals -----------------------------------------------------------------------------------


class Refused(Exception):
    """A call turned away: the HTTP answer, and the refusal to record (if any)."""

    def __init__(
        self,
        status: int,
        refusal: Refusal | None,
        *,
        authenticated: bool,
        detail: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or (refusal.explanation if refusal else str(status)))
        self.status = status
        self.refusal = refusal
        # Whether the caller proved the secret or token: only then is its body worth keeping.
        self.authenticated = authenticated
        self.detail = detail
        self.headers = headers

    def response(self) -> JSONResponse:
        content: dict[str, Any]
        if self.detail is None and self.refusal is not None:
            problem = FieldProblem(field=self.refusal.field or "body", reason=self.refusal.detail)
            content = {"detail": [problem.model_dump()]}
        else:
            content = {"detail": self.detail}
        return JSONResponse(content, status_code=self.status, headers=self.headers)


def _invalid(
    error: SignalError, source: SignalSource, raw_body: str | None, *, authenticated: bool
) -> Refused:
    status = 409 if isinstance(error, KeyReused) else 422
    refusal = Refusal.of(error, source, raw_body=raw_body)
    return Refused(status, refusal, authenticated=authenticated)


def _unauthorised(source: SignalSource, reason: RejectionReason, detail: str) -> Refused:
    refusal = Refusal(source=source, reason=reason, detail=detail)
    challenge = {"WWW-Authenticate": "Bearer"} if reason is RejectionReason.INVALID_TOKEN else None
    return Refused(401, refusal, authenticated=False, detail=detail, headers=challenge)


# -- the intake ---------------------------------------------------------------------------------


class HttpIntake:
    """The request handling behind the routes, one method per endpoint."""

    def __init__(self, settings: SignalSettings, intake: Intake, limiter: RateLimiter) -> None:
        self._settings = settings
        self._intake = intake
        self._limiter = limiter
        self._allow_list = AddressAllowList(settings.networks)
        self._webhook_secret = settings.webhook_secret_value
        self._api_token = settings.api_token_value
        self._hmac_key = settings.webhook_hmac_key_value

    async def tradingview(self, request: Request) -> Response:
        source = SignalSource.TRADINGVIEW
        remote = _client_address(request)
        try:
            await self._admit(remote, source)
            body = await _read_body(
                request, self._settings.max_body_bytes, source, authenticated=False
            )
            incoming = self._alert(body, request)
        except Refused as refused:
            return await self._turn_away(refused, remote)
        except ClientDisconnect:
            return _caller_hung_up(source, remote)
        return await self._accept(incoming, remote)

    async def submit(
        self, request: Request, credentials: HTTPAuthorizationCredentials | None
    ) -> Response:
        source = SignalSource.API
        remote = _client_address(request)
        try:
            await self._admit(remote, source)
            self._authorise(credentials, source)
            body = await _read_body(
                request, self._settings.max_body_bytes, source, authenticated=True
            )
            incoming = self._api_signal(body)
        except Refused as refused:
            return await self._turn_away(refused, remote)
        except ClientDisconnect:
            return _caller_hung_up(source, remote)
        return await self._accept(incoming, remote)

    async def show(
        self, request: Request, signal_id: str, credentials: HTTPAuthorizationCredentials | None
    ) -> Response:
        remote = _client_address(request)
        try:
            await self._admit(remote, SignalSource.API)
            self._authorise(credentials, SignalSource.API)
        except Refused as refused:
            return refused.response()  # a read: nothing to record
        stored = await self._intake.find(signal_id)
        if stored is None:
            return JSONResponse({"detail": "unknown signal"}, status_code=404)
        view = SignalView(
            signal_id=stored.signal_id,
            source=stored.source,
            dedupe_key=stored.dedupe_key,
            received_at=stored.received_at,
            signal=stored.request,
        )
        return JSONResponse(view.model_dump(mode="json"))

    # -- steps ---------------------------------------------------------------------------------
    async def _admit(self, remote: str | None, source: SignalSource) -> None:
        # The allow-list first: an address that may not call spends no client's budget, nor a
        # slot of the in-process counter that allowed senders need.
        if not self._allow_list.allows(remote):
            refusal = Refusal(
                source=source,
                reason=RejectionReason.FORBIDDEN_ADDRESS,
                detail=f"address {remote} is not allowed",
            )
            raise Refused(403, refusal, authenticated=False, detail="address not allowed")
        if not await self._limiter.allow(rate_limit_client(remote)):
            # Not recorded: a flood must not become a flood of rows.
            raise Refused(
                429,
                None,
                authenticated=False,
                detail="rate limit exceeded",
                headers={"Retry-After": str(self._limiter.retry_after())},
            )

    def _authorise(
        self, credentials: HTTPAuthorizationCredentials | None, source: SignalSource
    ) -> None:
        given = credentials.credentials if credentials is not None else None
        if not secret_matches(given, self._api_token):
            raise _unauthorised(source, RejectionReason.INVALID_TOKEN, "invalid token")

    def _alert(self, body: bytes, request: Request) -> Incoming:
        source = SignalSource.TRADINGVIEW
        if self._hmac_key is not None and not hmac_signature_valid(
            body, request.headers.get(SIGNATURE_HEADER), self._hmac_key
        ):
            raise _unauthorised(source, RejectionReason.INVALID_SIGNATURE, "invalid signature")
        decoded = body.decode("utf-8", errors="replace")
        text = redact(decoded, [self._webhook_secret])
        try:
            fields = read_alert_fields(body, request.headers.get("content-type"))
        except AlertError as error:
            # No secret can be read from it: what is wrong with its syntax tells nothing, but
            # its body is only worth keeping when it carries the secret.
            knows_secret = self._webhook_secret in decoded
            raise _invalid(error, source, text, authenticated=knows_secret) from None
        # The secret before anything else: a sender without it learns nothing about the alert.
        if not secret_matches(alert_secret(fields), self._webhook_secret):
            raise _unauthorised(source, RejectionReason.INVALID_SECRET, "invalid secret")
        try:
            alert = alert_from_fields(fields, default_account=self._settings.default_account)
            venue = alert_venue(alert, self._settings.default_venue)
            markets = venue_markets(venue, self._settings.markets, field="venue")
            signal = to_signal_request(alert, markets, self._settings.default_venue)
        except SignalError as error:
            raise _invalid(error, source, text, authenticated=True) from None
        return Incoming(
            source=source,
            dedupe_key=dedupe_key(alert),
            request=signal,
            raw_body=text,
            key_field=dedupe_key_field(alert),
        )

    def _api_signal(self, body: bytes) -> Incoming:
        source = SignalSource.API
        text = body.decode("utf-8", errors="replace")
        try:
            submitted = parse_api_request(body)
            signal = normalise_signal(submitted.signal, self._settings.markets)
        except SignalError as error:  # the token was checked before the body was read
            raise _invalid(error, source, text, authenticated=True) from None
        return Incoming(
            source=source,
            dedupe_key=request_dedupe_key(source, submitted.idempotency_key),
            request=signal,
            raw_body=text,
        )

    async def _accept(self, incoming: Incoming, remote: str | None) -> Response:
        try:
            recorded = await self._intake.accept(incoming)
        except KeyReused as error:
            refused = _invalid(error, incoming.source, incoming.raw_body, authenticated=True)
            return await self._turn_away(refused, remote)
        except DedupeContention:
            return JSONResponse(
                {"detail": "busy: try again"}, status_code=503, headers={"Retry-After": "1"}
            )
        span = trace.get_current_span()
        span.set_attribute("ordo.signal_id", recorded.signal_id)
        span.set_attribute("ordo.account", incoming.request.account)
        answer = IntakeAnswer(signal_id=recorded.signal_id, duplicate=recorded.duplicate)
        return JSONResponse(answer.model_dump(), status_code=200 if recorded.duplicate else 202)

    async def _turn_away(self, refused: Refused, remote: str | None) -> Response:
        refusal = refused.refusal
        if refusal is not None and not refused.authenticated:
            # What a caller without credentials sent is not kept, and all such callers share
            # one budget of records: the rate limit per client alone would let many addresses
            # write many rows.
            within_budget = await self._limiter.allow(UNAUTHENTICATED_REFUSALS)
            refusal = replace(refusal, raw_body=None) if within_budget else None
        if refusal is not None:
            await self._intake.refuse(replace(refusal, remote_address=remote))
        return refused.response()


async def _read_body(
    request: Request, limit: int, source: SignalSource, *, authenticated: bool
) -> bytes:
    """The body, refused as soon as it is known to exceed ``limit`` bytes (before any parsing)."""
    too_large = Refused(
        413,
        Refusal(
            source=source,
            reason=RejectionReason.BODY_TOO_LARGE,
            detail=f"is larger than {limit} bytes",
            field="body",
        ),
        authenticated=authenticated,
        detail=f"body larger than {limit} bytes",
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


def _caller_hung_up(source: SignalSource, remote: str | None) -> Response:
    # Nothing was received whole, so nothing is accepted or refused (no record: a caller
    # cannot fill the table by hanging up); the answer reaches no one.
    log.info("caller hung up before its body arrived", source=source, remote=remote)
    return Response(status_code=CLIENT_CLOSED_REQUEST)


def _client_address(request: Request) -> str | None:
    return request.client.host if request.client is not None else None


# -- the app ------------------------------------------------------------------------------------


def new_app() -> FastAPI:
    """The FastAPI app, routes added by :func:`add_intake_routes` once the kit exists."""
    app = FastAPI(
        title=TITLE, description=DESCRIPTION, version="1", docs_url="/docs", redoc_url=None
    )
    _document_bodies(app, (TradingViewAlert, SignalApiRequest))
    return app


def add_intake_routes(app: FastAPI, handling: HttpIntake) -> None:
    router = APIRouter(prefix="/v1", tags=["signals"])
    bearer = HTTPBearer(auto_error=False, description="The API token (ORDO_API_TOKEN)")
    Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]

    @router.post(
        "/webhooks/tradingview",
        status_code=202,
        response_model=IntakeAnswer,
        response_description="Accepted: the new signal's id",
        responses=_ANSWERS,
        summary="A TradingView strategy alert",
        description=(
            "The body is the alert message: Ordo's JSON template (`application/json`) or the "
            "same fields as `key=value` lines (`text/plain`). The `secret` field must be the "
            "webhook secret. When `webhook_hmac_key` is configured, the `X-Ordo-Signature` "
            "header must carry the hex HMAC-SHA256 of the body."
        ),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/TradingViewAlert"},
                        "example": TEMPLATE_EXAMPLE,
                    },
                    "text/plain": {
                        "schema": {"type": "string"},
                        "example": "secret=...\nticker={{ticker}}\n"
                        "action={{strategy.order.action}}\n...",
                    },
                },
            }
        },
    )
    async def tradingview_webhook(request: Request) -> Response:
        return await handling.tradingview(request)

    @router.post(
        "/signals",
        status_code=202,
        response_model=IntakeAnswer,
        response_description="Accepted: the new signal's id",
        responses=_ANSWERS,
        summary="Submit a signal (bearer token)",
        description="A repeat with the same `idempotency_key` returns the first signal's id.",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/SignalApiRequest"}
                    }
                },
            }
        },
    )
    async def submit_signal(request: Request, credentials: Credentials) -> Response:
        return await handling.submit(request, credentials)

    @router.get(
        "/signals/{signal_id}",
        response_model=SignalView,
        responses={
            401: _REFUSALS[401],
            404: {"model": Problem, "description": "No such signal"},
            429: _REFUSALS[429],
        },
        summary="A recorded signal (bearer token)",
    )
    async def show_signal(request: Request, signal_id: str, credentials: Credentials) -> Response:
        return await handling.show(request, signal_id, credentials)

    app.include_router(router)
    app.openapi_schema = None  # the routes changed: document them afresh


def _document_bodies(app: FastAPI, models: tuple[type[BaseModel], ...]) -> None:
    """Add the schemas of bodies the routes read themselves (to check their size first)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in models:
                model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                for name, definition in model_schema.pop("$defs", {}).items():
                    components.setdefault(name, definition)
                components[model.__name__] = model_schema
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
