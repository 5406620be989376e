"""``make chaos``: the engine under faults, then its invariants, from what the system says.

A steady load of TradingView alerts runs while every service is SIGKILLed and restarted in turn,
the NATS server restarts, the paper venue fails and times out, and stream messages are duplicated,
replayed and corrupted. Once the load stops and every accepted signal has settled, the run checks:

* every accepted signal reached exactly one terminal outcome;
* no client order id was created twice at the venue, and the venue holds what the OMS holds;
* every OMS position equals the signed sum of its orders' fills;
* the reconciler, run after the load, finds nothing;
* the dead-letter stream holds nothing but the undecodable messages the run injected.

``python -m ordo.bench.chaos`` runs it with figures and JSON; ``run_chaos`` is the same run for
the integration test.
"""

from ordo.bench.chaos.plan import ChaosPlan
from ordo.bench.chaos.report import ChaosReport
from ordo.bench.chaos.run import run_chaos

__all__ = ["ChaosPlan", "ChaosReport", "run_chaos"]
