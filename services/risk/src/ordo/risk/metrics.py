"""The risk gate's own metric: the proposals it denied, by reason (``ordo_risk_denials_total``)."""

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy.ext.asyncio import AsyncSession

from ordo.contracts.risk import DenialReason
from ordo.kit.metrics import count_when_committed
from ordo.risk.domain.checks import DenialCode


class RiskMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._denials = Counter(
            "ordo_risk_denials",
            "Proposals the risk gate denied, by reason code (a proposal denied for two reasons "
            "counts under both)",
            ["reason"],
            registry=registry,
        )
        for code in DenialCode:  # every reason from the start, so that rates begin at 0
            self._denials.labels(reason=code.value)

    def count_denial(self, session: AsyncSession, reasons: Iterable[DenialReason]) -> None:
        """Count the denial once the decision is stored (the transaction of ``session``)."""
        codes = sorted({reason.code for reason in reasons})
        count_when_committed(session, *(self._denials.labels(reason=code) for code in codes))
