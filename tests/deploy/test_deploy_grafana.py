"""Grafana for docker-compose: the dashboards in deploy/grafana, the data source they name, and
queries Prometheus can parse. (That the queries name only series the services export, with the
labels they carry, is checked against the running services: tests/integration.)"""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
GRAFANA = REPO / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
# Grafana replaces these before Prometheus sees a query.
GRAFANA_MACROS = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside collapsed rows included."""
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def queries(path: Path) -> Iterator[tuple[str, str]]:
    """(panel title, PromQL expression) of every query of the dashboard."""
    for panel in panels(json.loads(path.read_text())):
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def promql(expression: str) -> promql_parser.Expr:
    for macro, value in GRAFANA_MACROS.items():
        expression = expression.replace(macro, value)
    return promql_parser.parse(expression)


def compose_grafana() -> dict[str, Any]:
    grafana = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["grafana"]
    assert isinstance(grafana, dict)
    return grafana


def test_there_is_a_dashboard() -> None:
    assert [p.name for p in DASHBOARDS] == ["ordo.json"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_query_is_promql(path: Path) -> None:
    found = list(queries(path))
    assert len(found) > 10
    for title, expression in found:
        try:
            promql(expression)
        except ValueError as error:
            pytest.fail(f"{path.name}, panel {title!r}: {error}")


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_panel_reads_the_provisioned_prometheus_and_has_its_own_place(path: Path) -> None:
    provisioned = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yaml").read_text()
    )
    (source,) = provisioned["datasources"]
    assert source["url"] == "http://prometheus:9090"
    dashboard = json.loads(path.read_text())
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == source["uid"], panel["title"]
        assert all(t["datasource"]["uid"] == source["uid"] for t in panel["targets"])
        position = panel["gridPos"]
        assert position["x"] + position["w"] <= 24, f"{panel['title']} is wider than the grid"


def test_compose_grafana_provisions_the_dashboards_from_the_repository() -> None:
    grafana = compose_grafana()
    mounts = dict(volume.split(":")[:2] for volume in grafana["volumes"])
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "ordo.yaml").read_text())[
        "providers"
    ][0]
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{provider['options']['path']}/ordo.json"
    assert grafana["depends_on"]["prometheus"]["condition"] == "service_healthy"
