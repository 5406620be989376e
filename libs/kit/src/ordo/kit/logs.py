"""Structured logs (structlog) carrying the trace id, span id and correlation/order ids."""

import logging
import sys
import traceback
from typing import Any

import structlog
from opentelemetry import trace


def _add_trace_ids(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event.setdefault("trace_id", format(context.trace_id, "032x"))
        event.setdefault("span_id", format(context.span_id, "016x"))
    return event


class _BenignFetchTimeout(logging.Filter):
    """Drops one known false alarm: nats-py's ``fetch`` on an idle pull consumer can end with a bare
    ``asyncio.TimeoutError`` (when the server's "no messages" answer arrives just before its own
    timer) instead of ``nats.errors.TimeoutError``, which FastStream expects. FastStream then logs
    an ERROR and restarts the fetch loop at once: nothing is lost, and an operator should not be
    alarmed. Any other error of that loop still shows.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.exc_info or "raised an exception, retrying" not in record.getMessage():
            return True
        error = record.exc_info[1]
        from_fetch = (
            error is not None
            and error.__traceback__ is not None
            and any(
                frame.f_code.co_name == "_fetch_n"
                for frame, _ in traceback.walk_tb(error.__traceback__)
            )
        )
        return not (type(error) is TimeoutError and from_fetch)


def setup_logging(service: str, level: str = "INFO", *, as_json: bool = True) -> None:
    """Route stdlib and structlog logs through one JSON renderer on stderr."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_trace_ids,
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_BenignFetchTimeout())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    structlog.contextvars.bind_contextvars(service=service)
    for noisy in ("uvicorn.access", "aiosqlite", "faststream.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
