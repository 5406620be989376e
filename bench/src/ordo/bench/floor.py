"""The floor: four bare Python hops over the same NATS server, JetStream publish with ack each.

Nothing Ordo does per message (decoding, stores, outbox, tracing, breakers) happens here, so no
design of Ordo's can beat these figures on this machine: they are what the end-to-end figures are
held against.
"""

import asyncio
import contextlib
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import nats
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig

from ordo.bench.relay import hop_subject
from ordo.bench.stats import Latency
from ordo.kit.embedded import NatsServer, die_with_parent

HOPS = 4
STREAM = "BENCHFLOOR"
PAYLOAD_BYTES = 600  # about the size of an Ordo message with its envelope
_STAMP = struct.Struct("!qq")  # sequence number, monotonic send time in ns

Progress = Callable[[int], None]


@dataclass(frozen=True)
class FloorResult:
    rate: int
    latency: Latency
    throughput: float  # messages per second through all four hops, publisher unthrottled

    def to_json(self) -> dict[str, Any]:
        return {
            "hops": HOPS,
            "latency_rate_per_second": self.rate,
            "latency_ms": self.latency.to_json(),
            "throughput_per_second": round(self.throughput, 1),
        }


async def measure_floor(
    nats_server: NatsServer,
    *,
    rate: int = 200,
    latency_messages: int = 2_000,
    throughput_messages: int = 5_000,
    progress: Progress = lambda _: None,
) -> FloorResult:
    admin = nats_server.credentials.admin
    nc = await nats.connect(nats_server.url, user=admin.name, password=admin.password)
    try:
        js = nc.jetstream()
        await _recreate_stream(js)
        with _relays(nats_server.url, admin.name, admin.password):
            sink = _Sink()
            await nc.subscribe(hop_subject(HOPS), cb=sink.arrived)
            await _warm_up(js, sink)
            latency = await _paced(js, sink, rate, latency_messages, progress)
            throughput = await _flood(js, sink, throughput_messages, progress)
        return FloorResult(rate, latency, throughput)
    finally:
        with contextlib.suppress(Exception):
            await js.delete_stream(STREAM)
        await nc.drain()


class _Sink:
    """Where the last hop's messages arrive: latency per message, and when the last one came."""

    def __init__(self) -> None:
        self.latencies_ms: dict[int, float] = {}
        self.last_arrival_ns = 0
        self.waiting_for = 0
        self.done = asyncio.Event()

    def expect(self, count: int) -> None:
        self.latencies_ms.clear()
        self.waiting_for = count
        self.done.clear()

    async def arrived(self, message: Any) -> None:
        now = time.monotonic_ns()
        sequence, sent_ns = _STAMP.unpack_from(message.data)
        self.latencies_ms[sequence] = (now - sent_ns) / 1e6
        self.last_arrival_ns = now
        if len(self.latencies_ms) >= self.waiting_for:
            self.done.set()


def _payload(sequence: int) -> bytes:
    stamp = _STAMP.pack(sequence, time.monotonic_ns())
    return stamp + b"x" * (PAYLOAD_BYTES - len(stamp))


async def _recreate_stream(js: Any) -> None:
    with contextlib.suppress(Exception):
        await js.delete_stream(STREAM)
    await js.add_stream(
        StreamConfig(
            name=STREAM,
            subjects=[hop_subject(hop) for hop in range(HOPS + 1)],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,  # as Ordo's streams
            discard=DiscardPolicy.OLD,
        )
    )


@contextlib.contextmanager
def _relays(url: str, user: str, password: str) -> Iterator[None]:
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "ordo.bench.relay", url, user, password, STREAM, str(hop)],
            stdout=subprocess.PIPE,
            preexec_fn=die_with_parent,  # noqa: PLW1509
        )
        for hop in range(HOPS)
    ]
    try:
        for process in processes:
            assert process.stdout is not None
            if process.stdout.readline().strip() != b"ready":
                raise RuntimeError(f"floor relay exited with code {process.wait()}")
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=10)


async def _warm_up(js: Any, sink: _Sink, count: int = 50) -> None:
    sink.expect(count)
    for sequence in range(count):
        await js.publish(hop_subject(0), _payload(sequence), stream=STREAM)
    await asyncio.wait_for(sink.done.wait(), timeout=120)


async def _paced(js: Any, sink: _Sink, rate: int, count: int, progress: Progress) -> Latency:
    """``count`` messages at ``rate`` per second, each sent on its schedule."""
    sink.expect(count)
    interval = 1 / rate
    start = time.monotonic()
    for sequence in range(count):
        delay = start + sequence * interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)  # pacing the load, not waiting for a result
        await js.publish(hop_subject(0), _payload(sequence), stream=STREAM)
        progress(1)
    await asyncio.wait_for(sink.done.wait(), timeout=60)
    return Latency.of(list(sink.latencies_ms.values()))


async def _flood(js: Any, sink: _Sink, count: int, progress: Progress) -> float:
    """As fast as the first hop takes them: publishes pipelined, 256 awaiting their acks."""
    sink.expect(count)
    window = asyncio.Semaphore(256)

    async def send(sequence: int) -> None:
        async with window:
            await js.publish(hop_subject(0), _payload(sequence), stream=STREAM)
            progress(1)

    start_ns = time.monotonic_ns()
    await asyncio.gather(*(send(sequence) for sequence in range(count)))
    await asyncio.wait_for(sink.done.wait(), timeout=120)
    return count / ((sink.last_arrival_ns - start_ns) / 1e9)
