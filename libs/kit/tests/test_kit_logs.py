"""The log filter that hides exactly one known false alarm, and nothing else."""

import logging
import sys

from ordo.kit.logs import _BenignFetchTimeout


def _record_for(error: BaseException, message: str) -> logging.LogRecord:
    try:
        raise error
    except BaseException:
        exc_info = sys.exc_info()
    return logging.LogRecord("faststream", logging.ERROR, __file__, 1, message, None, exc_info)


def _fetch_n() -> None:  # named like nats-py's fetch internals
    raise TimeoutError


def _timeout_from_fetch() -> TimeoutError:
    try:
        _fetch_n()
    except TimeoutError as error:
        return error
    raise AssertionError("unreachable")


def test_the_bare_fetch_timeout_restart_is_dropped() -> None:
    record = _record_for(_timeout_from_fetch(), "Task-13 raised an exception, retrying...")
    assert _BenignFetchTimeout().filter(record) is False


def test_any_other_error_of_the_fetch_loop_still_shows() -> None:
    record = _record_for(ConnectionError("gone"), "Task-13 raised an exception, retrying...")
    assert _BenignFetchTimeout().filter(record) is True


def test_a_timeout_elsewhere_still_shows() -> None:
    record = _record_for(TimeoutError("venue"), "Task-13 raised an exception, retrying...")
    assert _BenignFetchTimeout().filter(record) is True
