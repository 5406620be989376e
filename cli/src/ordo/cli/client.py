"""Finding the running stack and talking to it: NATS as the operator user, HTTP to the services.

The stack is found through ``<var-dir>/run/stack.json``, which ``ordo up`` writes (it holds the
operator's NATS password, hence mode 0600); without it, through ``ORDO_NATS_URL`` (and
``ORDO_NATS_USER`` / ``ORDO_NATS_PASSWORD``), e.g. for a stack deployed elsewhere.
"""

import asyncio
import json
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import nats
from nats.aio.client import Client as NatsClient
from nats.errors import AuthorizationError, NoRespondersError
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import PubAck
from nats.js.errors import NoStreamResponseError, NotFoundError
from pydantic import ValidationError

from ordo.cli.errors import CliError, RequestTimedOut, StackNotFound, StackUnreachable
from ordo.contracts.envelope import Message
from ordo.contracts.subjects import ROUTES, STREAM_OF_SUBJECT, STREAMS, subject_of

# The path ``ordo.cli.stack.Stack`` writes, relative to the var dir. Spelled here rather than
# imported so that a query does not load the launcher (and Redis) just to read a file.
STACK_FILE = Path("run") / "stack.json"
DEFAULT_VAR_DIR = Path("var")

M = TypeVar("M", bound=Message)


# -- finding the stack --------------------------------------------------------------------------
@dataclass(frozen=True)
class NatsTarget:
    url: str
    user: str | None = None
    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ServiceEntry:
    name: str
    url: str
    pid: int | None = None
    log: str | None = None


@dataclass(frozen=True)
class StackInfo:
    """What a client needs to know about a running stack."""

    nats: NatsTarget
    stack_file: Path | None = None  # None: found through the environment
    services: tuple[ServiceEntry, ...] = ()
    spans_dir: Path | None = None
    api_url: str | None = None
    api_token_file: Path | None = None
    webhook_url: str | None = None
    webhook_secret_file: Path | None = None

    @property
    def source(self) -> str:
        return str(self.stack_file) if self.stack_file else "ORDO_NATS_URL"


def stack_file_path(var_dir: Path) -> Path:
    return var_dir / STACK_FILE


def find_stack(var_dir: Path, environ: Mapping[str, str] | None = None) -> StackInfo:
    """The stack described by ``<var_dir>/run/stack.json``, else by ``ORDO_NATS_URL``."""
    env = os.environ if environ is None else environ
    path = stack_file_path(var_dir)
    if path.exists():
        return load_stack_file(path)
    url = env.get("ORDO_NATS_URL")
    if url:
        target = NatsTarget(url, env.get("ORDO_NATS_USER"), env.get("ORDO_NATS_PASSWORD"))
        return StackInfo(nats=target)
    raise StackNotFound(
        f"no running stack found: {path} does not exist and ORDO_NATS_URL is not set. "
        "Start one with `ordo up` (or `make run`), or point --var-dir / ORDO_VAR_DIR at it."
    )


def load_stack_file(path: Path) -> StackInfo:
    try:
        data = json.loads(path.read_text())
        nats_info = data["nats"]
        return StackInfo(
            nats=NatsTarget(nats_info["url"], nats_info.get("user"), nats_info.get("password")),
            stack_file=path,
            services=tuple(
                ServiceEntry(name, entry["url"], entry.get("pid"), entry.get("log"))
                for name, entry in data.get("services", {}).items()
            ),
            spans_dir=_optional_path(data.get("spans_dir")),
            api_url=data.get("api", {}).get("url"),
            api_token_file=_optional_path(data.get("api", {}).get("token_file")),
            webhook_url=data.get("webhook", {}).get("url"),
            webhook_secret_file=_optional_path(data.get("webhook", {}).get("secret_file")),
        )
    except PermissionError:
        raise CliError(f"cannot read {path}: it belongs to the user who ran `ordo up`") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise CliError(f"{path} is not a readable stack file ({error!r})") from None


def spans_dir_for(var_dir: Path) -> Path:
    """Where the services write spans: the stack file says; a stopped stack used var/spans."""
    path = stack_file_path(var_dir)
    if path.exists():
        spans_dir = load_stack_file(path).spans_dir
        if spans_dir is not None:
            return spans_dir
    return var_dir / "spans"


def _optional_path(value: Any) -> Path | None:
    return Path(value) if value else None


def process_alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but someone else's
        return True
    return True


# -- NATS -------------------------------------------------------------------------------------
@dataclass
class NatsSession:
    """An open connection plus the asynchronous errors the server sent (permission violations)."""

    nc: NatsClient
    target: NatsTarget
    errors: list[Exception] = field(default_factory=list)


@asynccontextmanager
async def nats_session(target: NatsTarget, *, timeout: float = 3.0) -> AsyncIterator[NatsSession]:
    """A connection as the operator user, closed on the way out; fails fast when NATS is down."""
    errors: list[Exception] = []

    async def remember(error: Exception) -> None:
        # nats-py would log these; the CLI reports the last one itself.
        errors.append(error)

    try:
        nc = await asyncio.wait_for(
            nats.connect(
                target.url,
                user=target.user,
                password=target.password,
                name="ordo-cli",
                connect_timeout=max(1, round(timeout)),
                allow_reconnect=False,
                max_reconnect_attempts=1,
                reconnect_time_wait=0.1,
                error_cb=remember,
            ),
            timeout=timeout + 2.0,
        )
    except (NatsError, OSError, TimeoutError) as error:
        if any(_is_authorization_error(e) for e in (*errors, error)):
            raise StackUnreachable(
                f"NATS at {target.url} refused user {target.user!r}: the credentials are wrong "
                "(is the stack file from an older run?)"
            ) from None
        cause = errors[-1] if errors else error
        raise StackUnreachable(
            f"cannot reach NATS at {target.url} ({_describe(cause)}): is the stack running? "
            "(`ordo up`)"
        ) from None
    session = NatsSession(nc, target, errors)
    try:
        yield session
    finally:
        await nc.close()


async def ask_stack(var_dir: Path, message: Message, reply_type: type[M], timeout: float) -> M:
    """One query to the stack found from ``var_dir``, on a session of its own."""
    info = find_stack(var_dir)
    async with nats_session(info.nats, timeout=min(timeout, 3.0)) as session:
        return await ask(session, message, reply_type, timeout)


async def publish_to_stack(var_dir: Path, message: Message, timeout: float) -> PubAck:
    """One command to the stack found from ``var_dir``, on a session of its own."""
    info = find_stack(var_dir)
    async with nats_session(info.nats, timeout=min(timeout, 3.0)) as session:
        return await publish_command(session, message, timeout)


async def ask(session: NatsSession, message: Message, reply_type: type[M], timeout: float) -> M:
    """A core NATS request (a query) and its decoded reply."""
    subject = str(subject_of(message))
    try:
        reply = await session.nc.request(
            subject,
            message.to_json(),
            timeout=timeout,
            headers={"correlation_id": message.correlation_id},
        )
    except NoRespondersError:
        raise StackUnreachable(
            f"nobody answers {subject}: {_responder(subject)} is not running (see `ordo status`)"
        ) from None
    except NatsTimeoutError:
        raise RequestTimedOut(
            f"no reply on {subject} within {timeout:g}s{_refusal(session)}: is "
            f"{_responder(subject)} running and ready? (see `ordo status`)"
        ) from None
    except NatsError as error:
        raise StackUnreachable(f"the request on {subject} failed: {_describe(error)}") from None
    try:
        return reply_type.from_json(reply.data)
    except ValidationError as error:
        raise CliError(
            f"the reply on {subject} is not a valid {reply_type.schema_id()}: {error}"
        ) from None


async def publish_command(session: NatsSession, message: Message, timeout: float) -> PubAck:
    """Publish a command to its JetStream stream, deduplicated by its message id."""
    subject = str(subject_of(message))
    stream = STREAM_OF_SUBJECT[subject]
    js = session.nc.jetstream(timeout=timeout)
    headers = {"Nats-Msg-Id": message.message_id, "correlation_id": message.correlation_id}
    try:
        return await js.publish(subject, message.to_json(), stream=stream, headers=headers)
    except NoStreamResponseError:
        raise StackUnreachable(
            f"no JetStream stream stores {subject}{_refusal(session)}: stream {stream} does not "
            "exist yet (the services create it when they start)"
        ) from None
    except NatsTimeoutError:
        raise RequestTimedOut(
            f"JetStream did not acknowledge {subject} within {timeout:g}s{_refusal(session)}"
        ) from None
    except NatsError as error:
        raise CliError(f"JetStream refused {subject}: {_describe(error)}") from None


@dataclass(frozen=True)
class StreamCount:
    name: str
    messages: int | None  # None: the stream does not exist
    consumers: int | None
    description: str = ""


async def stream_counts(session: NatsSession, timeout: float) -> list[StreamCount]:
    js = session.nc.jetstream(timeout=timeout)
    counts = []
    for spec in STREAMS:
        try:
            info = await js.stream_info(spec.name)
        except NotFoundError:
            counts.append(StreamCount(spec.name, None, None, spec.description))
            continue
        except NatsTimeoutError:
            raise RequestTimedOut(
                f"JetStream did not answer within {timeout:g}s{_refusal(session)}"
            ) from None
        except NatsError as error:
            raise StackUnreachable(
                f"JetStream did not tell about stream {spec.name}: {_describe(error)}"
            ) from None
        counts.append(
            StreamCount(spec.name, info.state.messages, info.state.consumer_count, spec.description)
        )
    return counts


def _is_authorization_error(error: BaseException) -> bool:
    # nats-py reports a refused login as a plain error carrying the server's message.
    return isinstance(error, AuthorizationError) or "authorization violation" in str(error).lower()


def _responder(subject: str) -> str:
    services = [str(service) for service, routes in ROUTES.items() if subject in routes.replies]
    return f"the {' or '.join(services)} service" if services else "its service"


def _refusal(session: NatsSession) -> str:
    """The server's last complaint, if any: a permission violation explains a silent timeout."""
    return f" (NATS said: {_describe(session.errors[-1])})" if session.errors else ""


def _describe(error: BaseException) -> str:
    return str(error) or type(error).__name__


# -- HTTP -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Readiness:
    ready: bool
    failing: tuple[str, ...] = ()
    error: str | None = None

    @property
    def summary(self) -> str:
        if self.ready:
            return "ready"
        if self.error:
            return f"down ({self.error})"
        return "not ready: " + (", ".join(self.failing) or "no checks reported")


def readiness(client: httpx.Client, url: str) -> Readiness:
    """``GET <url>/readyz``: ready, or the checks that fail."""
    try:
        response = client.get(f"{url}/readyz")
    except httpx.TimeoutException:
        return Readiness(False, error="timed out")
    except httpx.HTTPError as error:
        return Readiness(False, error=type(error).__name__)
    try:
        checks = response.json().get("checks", {})
    except (ValueError, AttributeError):
        checks = {}
    failing = tuple(sorted(name for name, ok in checks.items() if not ok))
    if response.status_code == 200:
        return Readiness(True)
    return Readiness(False, failing or (f"HTTP {response.status_code}",))


@dataclass(frozen=True)
class ApiTarget:
    url: str
    token: str = field(repr=False)


def find_api(var_dir: Path, environ: Mapping[str, str] | None = None) -> ApiTarget:
    """The signal API (``POST /v1/signals``) and its bearer token.

    From the stack file; otherwise ``ORDO_API_URL`` with ``ORDO_API_TOKEN`` or
    ``ORDO_API_TOKEN_FILE``.
    """
    env = os.environ if environ is None else environ
    path = stack_file_path(var_dir)
    if path.exists():
        info = load_stack_file(path)
        url, token_file, token = info.api_url, info.api_token_file, None
    else:
        url = env.get("ORDO_API_URL")
        token_file = _optional_path(env.get("ORDO_API_TOKEN_FILE"))
        token = env.get("ORDO_API_TOKEN")
    if not url:
        raise StackNotFound(
            f"no signal API found: {path} does not exist and ORDO_API_URL is not set. "
            "Start the stack with `ordo up`."
        )
    if token is None and token_file is not None:
        try:
            token = token_file.read_text().strip()
        except OSError as error:
            raise CliError(f"cannot read the API token file {token_file}: {error}") from None
    if not token:
        raise CliError("no API token: set ORDO_API_TOKEN or ORDO_API_TOKEN_FILE")
    return ApiTarget(url, token)


def post_signal(api: ApiTarget, body: Mapping[str, Any], timeout: float) -> dict[str, Any]:
    """``POST /v1/signals``; the service's JSON answer, or a CliError saying why not."""
    try:
        response = httpx.post(
            api.url,
            json=body,
            headers={"Authorization": f"Bearer {api.token}"},
            timeout=timeout,
        )
    except httpx.TimeoutException:
        raise RequestTimedOut(f"the signal service did not answer within {timeout:g}s") from None
    except httpx.HTTPError as error:
        raise StackUnreachable(
            f"cannot reach the signal service at {api.url} ({type(error).__name__}): "
            "is the stack running? (`ordo status`)"
        ) from None
    try:
        answer = response.json()
    except ValueError:
        answer = {"body": response.text}
    if response.status_code in (401, 403):
        raise CliError(f"the signal service refused the API token (HTTP {response.status_code})")
    if response.status_code >= 400:
        raise CliError(
            f"the signal service refused the signal (HTTP {response.status_code}): "
            f"{_error_detail(answer)}"
        )
    return answer if isinstance(answer, dict) else {"body": answer}


def _error_detail(answer: Any) -> str:
    detail = answer.get("detail", answer) if isinstance(answer, dict) else answer
    if isinstance(detail, list):  # FastAPI's validation errors
        return "; ".join(
            f"{'.'.join(str(part) for part in item.get('loc', ()))}: {item.get('msg', item)}"
            if isinstance(item, dict)
            else str(item)
            for item in detail
        )
    return detail if isinstance(detail, str) else json.dumps(detail, default=str)
