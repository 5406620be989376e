"""A steady load of TradingView strategy alerts, as several strategies would send them.

Each lane (a strategy trading one symbol) walks its own long-only position: it enters, adds,
reduces and exits as a strategy would by its own count, whatever the engine made of the earlier
signals. A signal may therefore fail to plan (a reduce while the entry was rejected by the
venue): that is an outcome too. Each alert has its own id and is posted until the intake answers,
the same alert each time, so a retry after a lost answer is recognised as the same signal.
"""

import asyncio
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

import httpx

from ordo.bench.chaos.plan import ACCOUNT, ChaosPlan
from ordo.contracts.enums import Intent

# symbol → (TradingView ticker, order size, a price near the paper venue's start price)
MARKETS: dict[str, tuple[str, Decimal, Decimal]] = {
    "BTC/USDT": ("BINANCE:BTCUSDT", Decimal("0.001"), Decimal("60000")),
    "ETH/USDT": ("BINANCE:ETHUSDT", Decimal("0.01"), Decimal("3000")),
    "SOL/USDT": ("BINANCE:SOLUSDT", Decimal("0.1"), Decimal("150")),
}
STRATEGIES = ("chaos-trend", "chaos-swing", "chaos-scalp")
# Answers worth asking again: the intake was down, not ready, or asked us to slow down.
RETRYABLE = frozenset({429, 500, 502, 503, 504})
# A sender's retries of one alert back off, as TradingView's and any sane client's do: a flood
# of retries from the load itself would starve the restarting intake it waits for.
FIRST_RETRY_PAUSE = 0.25
MAX_RETRY_PAUSE = 2.0
REQUEST_TIMEOUT = 5.0
# A sender keeps a few connections, not one per alert: after a restart of the intake, the alerts
# that waited for it arrive as a queue, not as a herd.
CONNECTIONS = 8


@dataclass
class SentSignal:
    """One alert and what the intake answered for it."""

    alert_id: str
    strategy: str
    symbol: str
    intent: Intent
    signal_id: str | None = None
    repeat: bool = False  # answered as a repeat: an earlier post was accepted, its answer lost
    refusal: str | None = None  # a 4xx other than 429: the intake refused the alert
    attempts: int = 0

    @property
    def accepted(self) -> bool:
        return self.signal_id is not None


@dataclass
class Lane:
    """One strategy trading one symbol, counting its position in order sizes."""

    strategy: str
    symbol: str
    units: int = 0

    def next_alert(self, rng: random.Random) -> tuple[Intent, dict[str, str]]:
        """The lane's next strategy order: its intent, and the alert TradingView would send."""
        ticker, size, price = MARKETS[self.symbol]
        draw = rng.random()
        before = self.units
        if before == 0:
            intent, action, after = Intent.ENTER_LONG, "buy", 1
        elif draw < 0.5:
            intent, action, after = Intent.ADD, "buy", before + 1
        elif draw < 0.85 and before >= 2:
            intent, action, after = Intent.REDUCE, "sell", before - 1
        else:
            intent, action, after = Intent.EXIT_LONG, "sell", 0
        self.units = after
        alert = {
            "ticker": ticker,
            "exchange": ticker.partition(":")[0],
            "action": action,
            "contracts": str(size * abs(after - before)),
            "position_size": str(size * after),
            "market_position": "long" if after else "flat",
            "prev_market_position": "long" if before else "flat",
            "close": str(price),
            "interval": "1",
            "account": ACCOUNT,
            "strategy": self.strategy,
        }
        return intent, alert


@dataclass
class LoadFigures:
    sent: list[SentSignal] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def accepted_ids(self) -> set[str]:
        return {s.signal_id for s in self.sent if s.signal_id is not None}

    def summary(self) -> dict[str, int]:
        counts = Counter(
            "accepted" if s.accepted else "refused" if s.refusal is not None else "unanswered"
            for s in self.sent
        )
        return {
            "sent": len(self.sent),
            "accepted": counts["accepted"],
            "answered_as_repeat": sum(1 for s in self.sent if s.repeat),
            "retried": sum(1 for s in self.sent if s.attempts > 1),
            "refused": counts["refused"],
            "unanswered": counts["unanswered"],
        }


class SignalLoad:
    """Posts alerts at the plan's rate to the webhook until the load's time is up."""

    def __init__(self, webhook_url: str, secret: str, plan: ChaosPlan, run_id: str) -> None:
        self._url = webhook_url
        self._secret = secret
        self._plan = plan
        self._run_id = run_id
        self._rng = random.Random(plan.seed)
        self._lanes = [Lane(strategy, symbol) for strategy in STRATEGIES for symbol in MARKETS]
        self.figures = LoadFigures()

    async def run(self) -> LoadFigures:
        """Send for the plan's duration, then wait for the last alerts to be answered."""
        began = time.monotonic()
        interval = 1.0 / self._plan.rate
        posts: list[asyncio.Task[None]] = []
        limits = httpx.Limits(max_connections=CONNECTIONS)
        async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT, limits=limits) as http:
            due = began
            while due < began + self._plan.duration:
                posts.append(asyncio.create_task(self._post(http, self._next_signal())))
                due += interval
                # Pacing the load, not waiting for a result.
                await asyncio.sleep(max(0.0, due - time.monotonic()))
            await asyncio.gather(*posts)
        self.figures.seconds = time.monotonic() - began
        return self.figures

    def _next_signal(self) -> tuple[SentSignal, bytes]:
        lane = self._rng.choice(self._lanes)
        intent, alert = lane.next_alert(self._rng)
        sent = SentSignal(
            alert_id=f"{self._run_id}-{len(self.figures.sent) + 1}",
            strategy=lane.strategy,
            symbol=lane.symbol,
            intent=intent,
        )
        self.figures.sent.append(sent)
        body = {"secret": self._secret, **alert, "alert_id": sent.alert_id}
        return sent, json.dumps(body).encode()

    async def _post(self, http: httpx.AsyncClient, signal: tuple[SentSignal, bytes]) -> None:
        """Post the alert until the intake answers it, or give up after the answer timeout."""
        sent, body = signal
        give_up_at = time.monotonic() + self._plan.answer_timeout
        pause = FIRST_RETRY_PAUSE
        while True:
            sent.attempts += 1
            try:
                response = await http.post(
                    self._url, content=body, headers={"Content-Type": "application/json"}
                )
            except httpx.HTTPError:
                response = None  # the intake is down (SIGKILLed) or did not answer in time
            if response is not None and response.status_code in (200, 202):
                answer = response.json()
                sent.signal_id = answer["signal_id"]
                sent.repeat = bool(answer.get("duplicate"))
                return
            if response is not None and response.status_code not in RETRYABLE:
                sent.refusal = f"{response.status_code}: {response.text[:300]}"
                return
            if time.monotonic() > give_up_at:
                return
            await asyncio.sleep(pause)  # pacing the retries of one alert
            pause = min(pause * 2, MAX_RETRY_PAUSE)
