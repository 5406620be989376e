"""The reconciler's settings: the shipped configuration loads, and mistakes are refused."""

from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from ordo.reconciler.config import ReconcilerSettings, ReconcileTarget
from ordo.reconciler.domain.compare import Tolerances

REPO = Path(__file__).resolve().parents[3]
TOLERANCES = Tolerances(critical_notional=Decimal(100))


def test_the_shipped_configuration_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDO_CONFIG", str(REPO / "config" / "ordo.yaml"))

    settings = ReconcilerSettings()

    assert settings.accounts == (ReconcileTarget(account="main", venue="paper"),)
    assert settings.tolerances.critical_notional == Decimal(100)
    assert settings.tolerances.quantity_tolerance == Decimal("0.00000001")
    assert settings.interval_seconds == 30


def test_the_tolerances_must_be_configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "ordo.yaml"
    empty.write_text("reconciler: {}\n")
    monkeypatch.setenv("ORDO_CONFIG", str(empty))

    with pytest.raises(ValidationError, match="tolerances"):
        ReconcilerSettings()


def test_an_account_listed_twice_is_refused() -> None:
    target = ReconcileTarget(account="main", venue="paper")

    with pytest.raises(ValidationError, match=r"listed once \(repeated: \['main/paper'\]\)"):
        ReconcilerSettings(tolerances=TOLERANCES, accounts=(target, target))


def test_at_least_one_account_is_reconciled() -> None:
    with pytest.raises(ValidationError, match="accounts"):
        ReconcilerSettings(tolerances=TOLERANCES, accounts=())


def test_the_same_account_at_two_venues_is_two_targets() -> None:
    targets = (
        ReconcileTarget(account="main", venue="paper"),
        ReconcileTarget(account="main", venue="binance"),
    )

    assert ReconcilerSettings(tolerances=TOLERANCES, accounts=targets).accounts == targets
