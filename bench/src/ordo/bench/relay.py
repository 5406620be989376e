"""One hop of the floor: consume a JetStream subject, publish each message on to the next.

Plain nats-py and nothing else (no decoding, no store, no tracing): a durable pull consumer with
manual acks, a JetStream publish awaited for its ack per message, then the ack of the input. Run as
a process so that the floor pays for its hops what the services pay: one Python interpreter each.

    python -m ordo.bench.relay <nats-url> <user> <password> <stream> <hop>
"""

import asyncio
import sys

import nats
from nats.errors import TimeoutError as NatsTimeout


def hop_subject(hop: int) -> str:
    return f"floor.hop.{hop}"


async def relay(url: str, user: str, password: str, stream: str, hop: int) -> None:
    nc = await nats.connect(url, user=user, password=password)
    js = nc.jetstream()
    subscription = await js.pull_subscribe(
        hop_subject(hop), durable=f"floor-hop-{hop}", stream=stream
    )
    sys.stdout.write("ready\n")  # the bench waits for this line before it publishes
    sys.stdout.flush()
    while True:
        try:
            batch = await subscription.fetch(64, timeout=1)
        except NatsTimeout:
            continue
        for message in batch:
            await js.publish(hop_subject(hop + 1), message.data, stream=stream)
            await message.ack()


def main() -> None:
    url, user, password, stream, hop = sys.argv[1:6]
    asyncio.run(relay(url, user, password, stream, int(hop)))


if __name__ == "__main__":
    main()
