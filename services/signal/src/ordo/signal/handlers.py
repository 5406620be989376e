"""``SubmitSignal`` in → ``SignalAccepted`` or ``SignalRejected`` out.

Bad input is answered, never raised: a raised error means "try again", and a signal with an
unknown symbol will not become valid by being retried.
"""

from collections.abc import Collection, Mapping

from opentelemetry import trace

from ordo.contracts.signals import SubmitSignal
from ordo.kit.messaging import Handler
from ordo.kit.outbox import Transaction
from ordo.signal.domain import SignalError, normalise_signal, request_dedupe_key
from ordo.signal.intake import Incoming, Intake, Refusal


def submit_signal_handler(
    intake: Intake, markets: Mapping[str, Collection[str]]
) -> Handler[SubmitSignal]:
    """The consumer of ``signal.submit.v1``."""

    async def submit_signal(message: SubmitSignal, tx: Transaction) -> None:
        raw_body = message.to_json().decode()
        try:
            incoming = Incoming(
                source=message.source,
                dedupe_key=request_dedupe_key(message.source, message.idempotency_key),
                request=normalise_signal(message.signal, markets),
                raw_body=raw_body,
            )
            recorded = await intake.record(tx, incoming, cause=message)
        except SignalError as error:  # invalid, or its key already names another signal
            refusal = Refusal.of(error, message.source, raw_body=raw_body)
            rejection_id = await intake.reject(tx, refusal, cause=message)
            trace.get_current_span().set_attribute("ordo.signal_id", rejection_id)
            return
        trace.get_current_span().set_attribute("ordo.signal_id", recorded.signal_id)

    return submit_signal
