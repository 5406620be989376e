"""The faults a run injects while the load runs: crashed processes and misbehaving messages.

* Processes: each service in turn is SIGKILLed and started again; between rounds the NATS server
  restarts. One fault every ``process_fault_interval`` seconds.
* Messages (as the admin user): a *duplicate* publishes a message the stream just received again,
  a *replay* publishes one from the older half of the stream again; both keep the body and the
  headers but get a fresh ``Nats-Msg-Id``, so JetStream stores them and the consumers see them a
  second time. An *undecodable* message on a consumed subject must be dead-lettered by every
  service that consumes the subject, at once.

The venue's own faults (failures, timeouts) are configured, not injected from here.
"""

import asyncio
import itertools
import random
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from ordo.bench.chaos.control import StackControl
from ordo.bench.chaos.plan import ChaosPlan
from ordo.bench.chaos.streams import INJECTED_PREFIX, StoredMessage, headers_of, stream_of
from ordo.contracts.subjects import ROUTES, Service, Subject

NATS = "nats-server"
# The subjects whose messages are duplicated, replayed and corrupted: one per hop that consumes
# them (the OMS, execution, the OMS and the notifier).
MESSAGE_SUBJECTS = (Subject.SIGNAL_ACCEPTED, Subject.RISK_APPROVED, Subject.EXEC_REPORT)
# How far back from the stream's end a duplicate is taken.
RECENT = 50


@dataclass
class ProcessFaultFigures:
    kills: Counter[str] = field(default_factory=Counter)
    nats_restarts: int = 0
    recovery_seconds: list[float] = field(default_factory=list)
    failed_restarts: list[str] = field(default_factory=list)


class ProcessFaults:
    """SIGKILL each service in turn and restart it; restart NATS once per round."""

    def __init__(self, control: StackControl, plan: ChaosPlan) -> None:
        self._control = control
        self._plan = plan
        self._targets: Sequence[str] = (NATS, *control.services)
        self.figures = ProcessFaultFigures()
        self._recoveries: list[asyncio.Task[None]] = []

    async def run(self, load_began: float) -> None:
        """Inject faults through the plan's window, and at least one of each kind."""
        first, last = self._plan.fault_window
        due = load_began + first
        for count in itertools.count():
            if due > load_began + last and count >= len(self._targets):
                break
            # Pacing the faults, not waiting for a result.
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            await self._inject(self._targets[count % len(self._targets)])
            due = max(due + self._plan.process_fault_interval, time.monotonic())
        await asyncio.gather(*self._recoveries)

    async def _inject(self, target: str) -> None:
        if target == NATS:
            await self._restart_nats()
            return
        service = Service(target)
        self.figures.kills[target] += 1
        # The next fault does not wait for this service: faults may overlap, as in life.
        self._recoveries.append(asyncio.create_task(self._restart(service)))

    async def _restart_nats(self) -> None:
        # NATS restarts only with every service up (a service must reach NATS to start),
        # and waits for all of them to be ready again.
        self.figures.nats_restarts += 1
        try:
            self.figures.recovery_seconds.append(await self._control.restart_nats())
        except (RuntimeError, TimeoutError) as error:
            self.figures.failed_restarts.append(f"{NATS}: {str(error).splitlines()[0]}")

    async def _restart(self, service: Service) -> None:
        try:
            self.figures.recovery_seconds.append(await self._control.kill_and_restart(service))
        except (RuntimeError, TimeoutError) as error:
            # The first line says what happened; the log's tail that follows stays in the log.
            self.figures.failed_restarts.append(f"{service}: {str(error).splitlines()[0]}")


@dataclass(frozen=True)
class Poison:
    """An undecodable message, and the services that must dead-letter it."""

    subject: str
    body: bytes
    consumers: frozenset[str]


@dataclass
class MessageFaultFigures:
    duplicates: Counter[str] = field(default_factory=Counter)
    replays: Counter[str] = field(default_factory=Counter)
    poisons: list[Poison] = field(default_factory=list)  # stored in the stream for sure
    attempted_poisons: list[Poison] = field(default_factory=list)  # perhaps stored
    not_published: int = 0  # NATS was down (restarting) at that moment

    @property
    def poison_counts(self) -> Counter[str]:
        return Counter(poison.subject for poison in self.poisons)


class MessageFaults:
    """Duplicates, replays and undecodable messages on the consumed subjects."""

    def __init__(self, js: JetStreamContext, plan: ChaosPlan, run_id: str) -> None:
        self._js = js
        self._plan = plan
        self._run_id = run_id
        self._rng = random.Random(plan.seed + 1)
        self.figures = MessageFaultFigures()

    async def run(self, until: float) -> None:
        tick = 0
        while time.monotonic() < until:
            subject = MESSAGE_SUBJECTS[tick % len(MESSAGE_SUBJECTS)]
            injections = [self.duplicate, self.replay]
            if tick % self._plan.poison_every == self._plan.poison_every - 1:
                injections.append(self.poison)
            for inject in injections:
                try:
                    await inject(subject)
                except (NatsError, TimeoutError):
                    self.figures.not_published += 1  # NATS is restarting
            tick += 1
            # Pacing the faults, not waiting for a result.
            await asyncio.sleep(self._plan.message_fault_interval)

    async def duplicate(self, subject: Subject) -> None:
        """Publish again a message the stream received a moment ago."""
        first, last = await self._sequences(subject)
        original = await self._pick(subject, max(first, last - RECENT))
        if original is not None:
            await self._republish(original, "duplicate")
            self.figures.duplicates[subject] += 1

    async def replay(self, subject: Subject) -> None:
        """Publish again a message from the older half of the stream."""
        first, last = await self._sequences(subject)
        original = await self._pick(subject, self._rng.randint(first, (first + last) // 2))
        if original is not None:
            await self._republish(original, "replay")
            self.figures.replays[subject] += 1

    async def poison(self, subject: Subject) -> None:
        """Publish a message no consumer can decode: each must dead-letter it at once."""
        number = len(self.figures.attempted_poisons) + 1
        # Half of them are not JSON at all, half are JSON that is no contract message.
        body = (
            f"chaos {self._run_id}: undecodable #{number}".encode()
            if number % 2
            else f'{{"chaos": "{self._run_id}", "undecodable": {number}}}'.encode()
        )
        consumers = frozenset(
            str(service) for service, routes in ROUTES.items() if subject in routes.consumes
        )
        poison = Poison(str(subject), body, consumers)
        # Known before it is sent: a publish whose acknowledgement is lost may still be stored,
        # and its dead letters are then explained all the same.
        self.figures.attempted_poisons.append(poison)
        await self._js.publish(
            subject,
            body,
            stream=stream_of(subject),
            headers={"Nats-Msg-Id": f"{INJECTED_PREFIX}poison-{uuid.uuid4()}"},
        )
        self.figures.poisons.append(poison)

    async def _sequences(self, subject: Subject) -> tuple[int, int]:
        state = (await self._js.stream_info(stream_of(subject))).state
        return state.first_seq, state.last_seq

    async def _pick(self, subject: Subject, from_sequence: int) -> StoredMessage | None:
        """The first message the services published on ``subject`` at or after the sequence."""
        sequence = max(from_sequence, 1)
        for _ in range(RECENT):
            try:
                raw = await self._js.get_msg(
                    stream_of(subject), seq=sequence, subject=str(subject), next=True
                )
            except NotFoundError:
                return None
            stored = StoredMessage(
                sequence=raw.seq or sequence,
                subject=raw.subject or str(subject),
                data=raw.data or b"",
                headers=headers_of(raw.headers),
            )
            if not stored.injected:
                return stored
            sequence = stored.sequence + 1
        return None

    async def _republish(self, original: StoredMessage, kind: str) -> None:
        headers = {k: v for k, v in original.headers.items() if not k.startswith("Nats-")}
        headers["Nats-Msg-Id"] = f"{INJECTED_PREFIX}{kind}-{uuid.uuid4()}"
        subject = Subject(original.subject)
        await self._js.publish(subject, original.data, stream=stream_of(subject), headers=headers)
