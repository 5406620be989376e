"""Handlers of one key take turns; other keys go on; a lock lives only while it is in use."""

import asyncio

from ordo.kit.keyed_locks import KeyedLocks


async def test_holders_of_one_key_take_turns_while_other_keys_go_on() -> None:
    locks = KeyedLocks()
    inside: dict[str, int] = {"a": 0, "b": 0}
    most_inside: dict[str, int] = {"a": 0, "b": 0}
    b_done = asyncio.Event()

    async def work(key: str) -> None:
        async with locks.hold(key):
            inside[key] += 1
            most_inside[key] = max(most_inside[key], inside[key])
            if key == "a":
                await b_done.wait()  # "a" waits inside for "b": "b" must not be blocked by it
            else:
                b_done.set()
            await asyncio.sleep(0)
            inside[key] -= 1

    await asyncio.wait_for(asyncio.gather(work("a"), work("a"), work("b"), work("b")), timeout=5)
    assert most_inside == {"a": 1, "b": 1}


async def test_a_lock_is_forgotten_once_nobody_holds_or_waits_for_it() -> None:
    locks = KeyedLocks()
    async with locks.hold("a"):
        waiter = asyncio.create_task(_hold_briefly(locks, "a"))
        await asyncio.sleep(0)
        assert len(locks) == 1
    await waiter
    assert len(locks) == 0


async def test_a_holder_that_fails_releases_the_key() -> None:
    locks = KeyedLocks()
    try:
        async with locks.hold("a"):
            raise RuntimeError("handler failed")
    except RuntimeError:
        pass
    await asyncio.wait_for(_hold_briefly(locks, "a"), timeout=5)
    assert len(locks) == 0


async def _hold_briefly(locks: KeyedLocks, key: str) -> None:
    async with locks.hold(key):
        await asyncio.sleep(0)
