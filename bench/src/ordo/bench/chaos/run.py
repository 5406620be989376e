"""One chaos run: start the stack, load it under faults, let it settle, check the invariants."""

import asyncio
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client as NatsClient

from ordo.bench.chaos import invariants
from ordo.bench.chaos.control import StackControl
from ordo.bench.chaos.evidence import SystemView, gather_evidence, wait_until
from ordo.bench.chaos.faults import MessageFaultFigures, MessageFaults, ProcessFaults
from ordo.bench.chaos.load import SignalLoad
from ordo.bench.chaos.plan import ChaosPlan, write_chaos_config
from ordo.bench.chaos.report import ChaosReport
from ordo.cli.stack import Stack
from ordo.contracts.enums import ReconciliationOutcome
from ordo.contracts.envelope import new_message_id
from ordo.contracts.subjects import Service
from ordo.contracts.types import utc_now

# A var dir the run may wipe: it made it (an empty or missing directory is fine too).
MARKER = ".ordo-chaos"
SETTLE_POLL = 1.0

Progress = Callable[[str, float, float | None], None]
"""(what the run is doing, how far it got, out of how much) → shown to a person, or not."""


def _quiet(_: str, __: float, ___: float | None) -> None:
    return None


async def run_chaos(
    plan: ChaosPlan,
    *,
    config_source: Path,
    var_dir: Path,
    progress: Progress = _quiet,
) -> ChaosReport:
    """Run ``plan`` against a fresh embedded stack under ``var_dir`` (logs and stores stay)."""
    run_id = f"chaos-{new_message_id()[-12:]}"
    started_at = utc_now().isoformat()
    _fresh(var_dir)
    config = write_chaos_config(config_source, var_dir / "ordo-chaos.yaml", plan)
    control = StackControl(Stack(var_dir / "stack", config_file=config))
    try:
        progress("starting NATS, Redis and the services", 0, None)
        began = time.monotonic()
        await control.start()
        seconds = {"stack_start": time.monotonic() - began}
        admin = control.stack.credentials.admin
        nc = await nats.connect(
            control.stack.nats.url,
            user=admin.name,
            password=admin.password,
            max_reconnect_attempts=-1,  # the run restarts NATS
            reconnect_time_wait=0.5,
            error_cb=_expected_while_nats_restarts,
        )
        try:
            report = await _run(
                plan, control, nc, progress, seconds, run_id=run_id, started_at=started_at
            )
        finally:
            await nc.close()
    finally:
        progress("stopping the stack", 0, None)
        await control.stop()
    return report


@dataclass
class _Injected:
    """What ran during the load: the load itself and the two kinds of faults."""

    load: SignalLoad
    processes: ProcessFaults
    messages: MessageFaults


async def _run(
    plan: ChaosPlan,
    control: StackControl,
    nc: NatsClient,
    progress: Progress,
    seconds: dict[str, float],
    *,
    run_id: str,
    started_at: str,
) -> ChaosReport:
    began = time.monotonic()
    injected = await _load_under_faults(plan, control, nc, progress, run_id=run_id)
    seconds["load"] = time.monotonic() - began

    view = SystemView(nc, control.stack.var_dir)
    progress("settling: every accepted signal to its outcome", 0, None)
    settled, seconds["settle"] = await wait_until(
        lambda: _settled(view, injected.load.figures.accepted_ids, injected.messages.figures),
        timeout=plan.settle_timeout,
        interval=SETTLE_POLL,
    )
    settled_at = utc_now()
    progress("waiting for a reconciliation run after the load", 0, None)
    _, seconds["reconcile"] = await wait_until(
        lambda: _reconciled_after(view, settled_at), timeout=plan.reconcile_timeout
    )

    progress("checking the invariants", 0, None)
    messages = injected.messages.figures
    evidence = await gather_evidence(
        view,
        sent_ids=injected.load.figures.accepted_ids,
        settled_at=settled_at,
        poison_bodies={p.body: p.consumers for p in messages.attempted_poisons},
        stored_poisons={p.body for p in messages.poisons},
    )
    outcome_check, outcomes = invariants.one_terminal_outcome(evidence)
    processes = injected.processes.figures
    checks = [
        outcome_check,
        invariants.no_order_created_twice(evidence),
        invariants.positions_equal_fills(evidence),
        invariants.reconciler_finds_nothing(evidence),
        invariants.dead_letters_explained(evidence),
        invariants.processes_came_back(
            processes.failed_restarts, sum(processes.kills.values()) + processes.nats_restarts
        ),
    ]
    return ChaosReport(
        plan=plan,
        run_id=run_id,
        started_at=started_at,
        signals={
            **injected.load.figures.summary(),
            "accepted_in_all": len(evidence.accepted_ids),
            "settled_in_time": int(settled),
        },
        faults=await _fault_figures(plan, injected, view),
        outcomes=dict(outcomes),
        checks=checks,
        seconds=seconds,
        var_dir=str(control.stack.var_dir),
        abandoned_orders=sorted(invariants.abandoned_orders(evidence)),
    )


async def _load_under_faults(
    plan: ChaosPlan, control: StackControl, nc: NatsClient, progress: Progress, *, run_id: str
) -> _Injected:
    """The load for the plan's duration, process and message faults all through it."""
    stack = control.stack
    webhook = f"{stack.processes[Service.SIGNAL].url}/v1/webhooks/tradingview"
    injected = _Injected(
        load=SignalLoad(webhook, stack.webhook_secret, plan, run_id),
        processes=ProcessFaults(control, plan),
        messages=MessageFaults(nc.jetstream(), plan, run_id),
    )
    began = time.monotonic()
    running = [
        asyncio.create_task(injected.load.run()),
        asyncio.create_task(injected.processes.run(began)),
        asyncio.create_task(injected.messages.run(until=began + plan.duration)),
    ]
    while not all(task.done() for task in running):
        accepted = sum(1 for sent in injected.load.figures.sent if sent.accepted)
        kills = sum(injected.processes.figures.kills.values())
        progress(
            f"load: {accepted} accepted, {kills} kills, "
            f"{injected.processes.figures.nats_restarts} NATS restarts",
            min(time.monotonic() - began, plan.duration),
            plan.duration,
        )
        await asyncio.wait(running, timeout=0.5)
    await asyncio.gather(*running)  # raises what a task raised
    return injected


async def _fault_figures(plan: ChaosPlan, injected: _Injected, view: SystemView) -> dict[str, Any]:
    processes, messages = injected.processes.figures, injected.messages.figures
    return {
        "service_kills": dict(sorted(processes.kills.items())),
        "nats_restarts": processes.nats_restarts,
        # From a kill (or NATS going down) until every affected service was ready again.
        "recovery_seconds": _spread(processes.recovery_seconds),
        "venue_failure_probability": str(plan.venue_failure_probability),
        "venue_timeout_probability": str(plan.venue_timeout_probability),
        "venue_calls_faulted": dict(sorted(view.venue_faults().items())),
        "venue_breaker_opens_announced": await view.venue_breaker_opens(),
        "duplicates": dict(sorted(messages.duplicates.items())),
        "replays": dict(sorted(messages.replays.items())),
        "undecodable": dict(sorted(messages.poison_counts.items())),
        "message_faults_not_published": messages.not_published,
    }


def _spread(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {"median": round(statistics.median(values), 1), "max": round(max(values), 1)}


async def _settled(view: SystemView, sent_ids: set[str], messages: MessageFaultFigures) -> bool:
    """Nothing is left that the system will still do by itself: every accepted signal has its
    record at the OMS and every order its terminal status, unless a dead letter stopped it (it
    waits for an operator, and the checks report it), and every injected undecodable message
    has been dead-lettered by all its consumers."""
    dead = await view.dead_letters()
    stopped_signals = {letter.signal_id for letter in dead}
    stopped_orders = {order_id for letter in dead for order_id in letter.order_ids}
    accepted = sent_ids | set(await view.accepted_signals())
    if accepted - set(await view.signal_outcomes()) - stopped_signals:
        return False
    if await view.unfinished_orders() - stopped_orders:
        return False
    dead_lettered = {(letter.service, letter.body) for letter in dead}
    return all(
        (consumer, poison.body) in dead_lettered
        for poison in messages.poisons
        for consumer in poison.consumers
    )


async def _reconciled_after(view: SystemView, settled_at: datetime) -> bool:
    return any(
        run.started_at > settled_at and run.outcome is not ReconciliationOutcome.FAILED
        for run in await view.reconciliation_runs()
    )


async def _expected_while_nats_restarts(error: Exception) -> None:
    """The client's connection errors: the run restarts NATS on purpose, and the client
    reconnects by itself (nats-py would print each one with its traceback)."""


def _fresh(var_dir: Path) -> None:
    """An empty var dir for the run; only one an earlier run made is ever removed."""
    if var_dir.exists() and any(var_dir.iterdir()):
        if not (var_dir / MARKER).exists():
            raise FileExistsError(
                f"{var_dir} is not empty and was not made by a chaos run: choose another --var-dir"
            )
        shutil.rmtree(var_dir)
    var_dir.mkdir(parents=True, exist_ok=True)
    (var_dir / MARKER).write_text("made by ordo.bench.chaos; removed by the next run\n")
