"""docker-compose.yml against the specification's tables, and mutated copies that must fail."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from tests.deploy import compose_rules as rules

Mutation = Callable[[dict[str, Any]], None]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return rules.load_compose()


def test_compose_file_meets_every_rule(compose: dict[str, Any]) -> None:
    assert rules.violations(compose) == []


def test_specification_table_reads_as_written(compose: dict[str, Any]) -> None:
    services = rules.services(compose)
    assert rules.published_ports(services["admin-api"]) == {("127.0.0.1", 8010, 8001)}
    assert rules.published_ports(services["user-api"]) == {("0.0.0.0", 8080, 8001)}
    public = [name for name, service in services.items() if "public" in rules.network_names(service)]
    assert public == ["user-api"]
    worker = services["celery-worker"]
    device = worker["deploy"]["resources"]["reservations"]["devices"][0]
    assert device == {"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}
    assert rules.default_of(worker["deploy"]["resources"]["limits"]["memory"]) == "16G"
    assert compose["networks"]["internal"]["internal"] is True
    assert rules.network_names(services["admin-api"]) == {"internal", "admin"}
    assert compose["networks"]["admin"]["driver_opts"]["com.docker.network.bridge.host_binding_ipv4"] == ("127.0.0.1")


def test_app_services_share_the_data_volumes(compose: dict[str, Any]) -> None:
    services = rules.services(compose)
    for name in rules.SHARED_DATA_SERVICES:
        mounts = rules.volume_mounts(services[name])
        assert mounts["finetuning_models"] == "/data/models/finetuned", name
        assert services[name]["environment"]["MODELS_DIR"] == "/data/models/finetuned", name


def _remove_healthcheck(compose: dict[str, Any]) -> None:
    del compose["services"]["redis"]["healthcheck"]


def _move_user_port(compose: dict[str, Any]) -> None:
    compose["services"]["user-api"]["ports"] = ["0.0.0.0:8081:8001"]


def _evicting_redis(compose: dict[str, Any]) -> None:
    command = compose["services"]["redis"]["command"]
    command[command.index("noeviction")] = "allkeys-lru"


def _keep_capabilities(compose: dict[str, Any]) -> None:
    del compose["services"]["mlflow"]["cap_drop"]


def _open_internal_network(compose: dict[str, Any]) -> None:
    compose["networks"]["internal"]["internal"] = False


def _two_gpu_jobs(compose: dict[str, Any]) -> None:
    command = compose["services"]["celery-worker"]["command"]
    command[command.index("--concurrency=1")] = "--concurrency=2"


def _no_gpu(compose: dict[str, Any]) -> None:
    del compose["services"]["celery-worker"]["deploy"]["resources"]["reservations"]


def _move_postgres_data(compose: dict[str, Any]) -> None:
    compose["services"]["postgres"]["volumes"][0] = "postgres_data:/var/lib/postgresql"


def _admin_on_public_network(compose: dict[str, Any]) -> None:
    compose["services"]["admin-api"]["networks"].append("public")


def _start_before_healthy(compose: dict[str, Any]) -> None:
    compose["services"]["user-api"]["depends_on"]["postgres"] = {"condition": "service_started"}


def _admin_on_every_interface(compose: dict[str, Any]) -> None:
    compose["services"]["admin-api"]["ports"] = ["8010:8001"]


def _writable_root(compose: dict[str, Any]) -> None:
    compose["services"]["qdrant"]["read_only"] = False


def _latest_image(compose: dict[str, Any]) -> None:
    compose["services"]["cerbos"]["image"] = "ghcr.io/cerbos/cerbos:latest"


def _inline_secret(compose: dict[str, Any]) -> None:
    compose["services"]["redis"]["environment"]["REDISCLI_AUTH"] = "hunter2"


def _root_user(compose: dict[str, Any]) -> None:
    compose["services"]["postgres"]["user"] = "root"


def _no_migrations_first(compose: dict[str, Any]) -> None:
    del compose["services"]["celery-worker-cpu"]["depends_on"]["migrate"]


def _published_engine(compose: dict[str, Any]) -> None:
    compose["services"]["inference"]["ports"] = ["127.0.0.1:8000:8000"]


def _engine_without_gpu(compose: dict[str, Any]) -> None:
    del compose["services"]["inference"]["deploy"]["resources"]["reservations"]


def _engine_on_public_network(compose: dict[str, Any]) -> None:
    compose["services"]["inference"]["networks"].append("public")


def _worker_runs_the_working_tree(compose: dict[str, Any]) -> None:
    compose["services"]["celery-worker"]["volumes"].append("./app:/app/app:ro")


def _engine_without_models(compose: dict[str, Any]) -> None:
    compose["services"]["inference"]["volumes"].remove("${BASE_MODELS_DIR:-./models}:/models:ro")


def _postgres_before_secrets_check(compose: dict[str, Any]) -> None:
    del compose["services"]["postgres"]["depends_on"]


MUTATIONS: list[tuple[str, Mutation, str]] = [
    ("no redis healthcheck", _remove_healthcheck, "redis has no healthcheck"),
    ("user-api on 8081", _move_user_port, "user-api publishes"),
    ("redis allkeys-lru", _evicting_redis, "--maxmemory-policy noeviction"),
    ("mlflow keeps capabilities", _keep_capabilities, "mlflow: cap_drop"),
    ("internal network routed", _open_internal_network, "not internal: true"),
    ("two GPU jobs at once", _two_gpu_jobs, "celery-worker command"),
    ("no GPU reservation", _no_gpu, "no GPU reservation"),
    ("postgres data elsewhere", _move_postgres_data, "postgres mounts postgres_data"),
    ("admin-api public", _admin_on_public_network, "admin-api joins ['public']"),
    ("start before healthy", _start_before_healthy, "user-api waits for postgres"),
    ("admin-api on 0.0.0.0", _admin_on_every_interface, "admin-api publishes 8010 beyond 127.0.0.1"),
    ("writable qdrant root", _writable_root, "qdrant: read_only"),
    ("unpinned image", _latest_image, "cerbos: image"),
    ("secret in the file", _inline_secret, "secret REDISCLI_AUTH"),
    ("postgres as root", _root_user, "postgres: runs as root"),
    ("worker before migrations", _no_migrations_first, "celery-worker-cpu does not wait for the migrations"),
    ("engine published", _published_engine, "inference publishes"),
    ("engine without GPU", _engine_without_gpu, "inference has no GPU reservation"),
    ("engine on a public network", _engine_on_public_network, "inference joins ['public']"),
    ("worker runs the working tree", _worker_runs_the_working_tree, "celery-worker mounts the working tree"),
    ("engine without local models", _engine_without_models, "inference does not mount the local base models"),
    ("postgres before the check", _postgres_before_secrets_check, "postgres may start before secrets-check"),
]


@pytest.mark.parametrize(("mutation", "expected"), [(m, e) for _, m, e in MUTATIONS], ids=[n for n, _, _ in MUTATIONS])
def test_mutated_compose_file_is_rejected(compose: dict[str, Any], mutation: Mutation, expected: str) -> None:
    mutated = copy.deepcopy(compose)
    mutation(mutated)
    found = rules.violations(mutated)
    assert any(expected in problem for problem in found), found
