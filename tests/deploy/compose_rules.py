"""What docker-compose.yml must say, as checks over the parsed file.

Each rule returns the violations it finds as sentences; an empty list means the file
meets the specification (DESIGN.md §1 and the deployment issue). The tests run the rules
on the real file and on mutated copies, so every rule is shown to be able to fail.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"

Compose = dict[str, Any]
Rule = Callable[[Compose], list[str]]

GPU_WORKER_COMMAND = "celery -A app.core.celery_app worker -Q gpu --concurrency=1 --pool=solo --hostname=gpu@%h"
CPU_WORKER_COMMAND = (
    "celery -A app.core.celery_app worker -Q cpu,evals --concurrency=4 --pool=prefork --beat "
    "--hostname=cpu@%h --schedule=/tmp/celerybeat-schedule"
)
EXPECTED_SERVICES = {
    "secrets-check",
    "migrate",
    "admin-api",
    "user-api",
    "celery-worker",
    "celery-worker-cpu",
    "postgres",
    "redis",
    "mlflow",
    "cerbos",
    "qdrant",
    "flower",
    "inference",
}
# (host address, host port, container port) of every published port.
PUBLISHED_PORTS = {
    "admin-api": {("127.0.0.1", 8010, 8001)},
    "user-api": {("0.0.0.0", 8080, 8001)},
    "mlflow": {("127.0.0.1", 5000, 5000)},
    "flower": {("127.0.0.1", 5555, 5555)},
}
EXPOSED_PORTS = {"postgres": {5432}, "redis": {6379}, "cerbos": {3592, 3593}, "qdrant": {6333}, "inference": {8000}}
SHARED_DATA_SERVICES = ("admin-api", "user-api", "celery-worker", "celery-worker-cpu")
NAMED_VOLUMES = {
    "postgres_data": {"postgres": "/var/lib/postgresql/data"},
    "redis_data": {"redis": "/data"},
    "mlflow_artifacts": {"mlflow": "/mlflow/artifacts"},
    "finetuning_models": dict.fromkeys(SHARED_DATA_SERVICES, "/data/models/finetuned"),
    "finetuning_logs": dict.fromkeys(SHARED_DATA_SERVICES, "/data/logs/finetuning"),
    "finetuning_datasets": dict.fromkeys(SHARED_DATA_SERVICES, "/data/datasets"),
    "qdrant_storage": {"qdrant": "/qdrant/storage"},
}
# Networks a service may join besides `internal`; data stores join nothing else.
EXTRA_NETWORKS = {
    "user-api": {"public"},
    "admin-api": {"admin"},
    "mlflow": {"admin"},
    "flower": {"admin"},
    "celery-worker": {"egress"},
    "celery-worker-cpu": {"egress"},
}
APP_SERVICES = ("admin-api", "user-api", "celery-worker", "celery-worker-cpu")
# Every process that loads a base model sees the local ones at one path.
MODELS_MOUNT = ("${BASE_MODELS_DIR:-./models}", "/models")
MODEL_SERVICES = ("admin-api", "user-api", "celery-worker", "celery-worker-cpu", "inference")
SECRETS_CHECK = "secrets-check"
DEFAULT = re.compile(r"^\$\{[A-Z][A-Z0-9_]*:-([^}]*)\}$")
# Secrets that `docker compose` refuses to go without (${VAR:?message}).
REQUIRED_SECRETS = (
    "POSTGRES_PASSWORD",
    "MLFLOW_DB_PASSWORD",
    "REDIS_PASSWORD",
    "QDRANT_API_KEY",
    "API_KEY_PEPPER",
)
# Images whose default user is already unprivileged.
NON_ROOT_IMAGES = re.compile(r"^qdrant/qdrant:v[\d.]+-unprivileged$")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|PEPPER|API_KEY|AUTH")


def load_compose(path: Path = COMPOSE_FILE) -> Compose:
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict), f"{path} is not a mapping"
    return loaded


def services(compose: Compose) -> dict[str, dict[str, Any]]:
    return dict(compose.get("services") or {})


def command_line(service: dict[str, Any], entrypoint: str = "") -> str:
    command = service.get("command") or []
    words = command.split() if isinstance(command, str) else [str(word) for word in command]
    return " ".join([entrypoint, *words] if entrypoint else words)


def default_of(value: object) -> str:
    """`${VAR:-default}` as compose renders it when VAR is unset; any other value as it is."""
    match = DEFAULT.match(str(value))
    return match.group(1) if match else str(value)


def published_ports(service: dict[str, Any]) -> set[tuple[str, int, int]]:
    ports = set()
    for entry in service.get("ports") or []:
        text = str(entry)
        address = ""
        if text.startswith("${"):  # an address from a variable: "${USER_API_BIND:-0.0.0.0}:8080:8001"
            variable, text = text[: text.index("}") + 1], text[text.index("}") + 2 :]
            address = default_of(variable)
        parts = text.split(":")
        if len(parts) == 3:
            address = parts[0]
        ports.add((address, int(parts[-2]), int(parts[-1])))
    return ports


def volume_mounts(service: dict[str, Any]) -> dict[str, str]:
    """Source → target of every short-syntax volume."""
    mounts = {}
    for entry in service.get("volumes") or []:
        text = str(entry)
        # A ${VAR:-default} source holds colons of its own.
        split_at = text.index("}") + 1 if text.startswith("${") else text.index(":")
        source, target = text[:split_at], text[split_at + 1 :].split(":")[0]
        mounts[source] = target
    return mounts


def network_names(service: dict[str, Any]) -> set[str]:
    networks = service.get("networks") or []
    return set(networks) if isinstance(networks, list) else set(networks.keys())


def is_one_shot(service: dict[str, Any]) -> bool:
    return str(service.get("restart", "")) == "no"


def dockerfile_user(dockerfile: Path) -> str:
    users = re.findall(r"^USER\s+(\S+)", dockerfile.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return users[-1] if users else "root"


def dockerfile_entrypoint(dockerfile: Path) -> str:
    match = re.search(r'^ENTRYPOINT\s+\["([^"]+)"\]', dockerfile.read_text(encoding="utf-8"), re.MULTILINE)
    return match.group(1) if match else ""


def _build_dockerfile(service: dict[str, Any]) -> Path | None:
    build = service.get("build")
    if not build:
        return None
    context = REPO_ROOT / build.get("context", ".")
    return context / build.get("dockerfile", "Dockerfile")


# ----------------------------------------------------------------------------- rules


def rule_services(compose: Compose) -> list[str]:
    found = set(services(compose))
    problems = [f"service {name} is missing" for name in sorted(EXPECTED_SERVICES - found)]
    problems += [f"service {name} is not in the specification" for name in sorted(found - EXPECTED_SERVICES)]
    return problems


def rule_ports(compose: Compose) -> list[str]:
    problems = []
    for name, service in services(compose).items():
        expected = PUBLISHED_PORTS.get(name, set())
        actual = published_ports(service)
        if actual != expected:
            problems.append(f"{name} publishes {sorted(actual)}, the specification says {sorted(expected)}")
        for address, host_port, _ in actual:
            if name != "user-api" and address != "127.0.0.1":
                problems.append(f"{name} publishes {host_port} beyond 127.0.0.1")
        exposed = {int(port) for port in service.get("expose") or []}
        if name in EXPOSED_PORTS and exposed != EXPOSED_PORTS[name]:
            problems.append(f"{name} exposes {sorted(exposed)}, expected {sorted(EXPOSED_PORTS[name])}")
    return problems


def rule_named_volumes(compose: Compose) -> list[str]:
    problems = []
    declared = set(compose.get("volumes") or {})
    all_services = services(compose)
    for volume, targets in NAMED_VOLUMES.items():
        if volume not in declared:
            problems.append(f"named volume {volume} is not declared")
        for name, path in targets.items():
            mounted = volume_mounts(all_services.get(name, {})).get(volume)
            if mounted != path:
                problems.append(f"{name} mounts {volume} at {mounted}, the specification says {path}")
    return problems


def rule_gpu_worker(compose: Compose) -> list[str]:
    worker = services(compose).get("celery-worker", {})
    dockerfile = _build_dockerfile(worker)
    entrypoint = dockerfile_entrypoint(dockerfile) if dockerfile and dockerfile.exists() else ""
    problems = []
    if command_line(worker, entrypoint) != GPU_WORKER_COMMAND:
        problems.append(f"celery-worker command is {command_line(worker, entrypoint)!r}")
    resources = (worker.get("deploy") or {}).get("resources") or {}
    devices = (resources.get("reservations") or {}).get("devices") or []
    gpu = [d for d in devices if d.get("driver") == "nvidia" and d.get("count") == "all"]
    if not gpu or "gpu" not in gpu[0].get("capabilities", []):
        problems.append("celery-worker has no GPU reservation (driver nvidia, count all, capabilities [gpu])")
    if default_of((resources.get("limits") or {}).get("memory")) != "16G":
        problems.append("celery-worker memory limit is not 16G")
    if "NVIDIA_VISIBLE_DEVICES" not in (worker.get("environment") or {}):
        problems.append("celery-worker does not pass NVIDIA_VISIBLE_DEVICES")
    mounts = volume_mounts(worker)
    if "/home/celery/.cache/huggingface" not in mounts.values():
        problems.append("celery-worker does not mount the Hugging Face cache")
    return problems


def rule_one_code_source(compose: Compose) -> list[str]:
    """Every service runs its image's code: a bind mount of ./app would let a `git pull` change what runs."""
    return [
        f"{name} mounts the working tree's ./app over its image's code"
        for name, service in services(compose).items()
        if any(str(entry).startswith(("./app:", "./app/")) for entry in service.get("volumes") or [])
    ]


def rule_models_mount(compose: Compose) -> list[str]:
    source, target = MODELS_MOUNT
    expected = f"{source}:{target}:ro"
    return [
        f"{name} does not mount the local base models read-only at {target}"
        for name in MODEL_SERVICES
        if expected not in [str(entry) for entry in services(compose).get(name, {}).get("volumes") or []]
    ]


def rule_secrets_checked_first(compose: Compose) -> list[str]:
    """Nothing starts (PostgreSQL initialising its volume least of all) before the example secrets are refused."""
    all_services = services(compose)
    if SECRETS_CHECK not in all_services:
        return [f"service {SECRETS_CHECK} is missing"]

    def waits_for_check(name: str, seen: frozenset[str] = frozenset()) -> bool:
        depends = set(all_services.get(name, {}).get("depends_on") or {})
        return SECRETS_CHECK in depends or any(waits_for_check(d, seen | {name}) for d in depends - seen)

    problems = [
        f"{name} may start before {SECRETS_CHECK}"
        for name in all_services
        if name != SECRETS_CHECK and not waits_for_check(name)
    ]
    if all_services[SECRETS_CHECK].get("network_mode") != "none":
        problems.append(f"{SECRETS_CHECK} needs no network (network_mode: none)")
    return problems


def rule_cpu_worker(compose: Compose) -> list[str]:
    worker = services(compose).get("celery-worker-cpu", {})
    dockerfile = _build_dockerfile(worker)
    entrypoint = dockerfile_entrypoint(dockerfile) if dockerfile and dockerfile.exists() else ""
    actual = command_line(worker, entrypoint)
    return [] if actual == CPU_WORKER_COMMAND else [f"celery-worker-cpu command is {actual!r}"]


def rule_inference(compose: Compose) -> list[str]:
    """The vLLM engine: on a GPU, LoRA loadable at run time, adapters read-only where the API sees them."""
    engine = services(compose).get("inference", {})
    problems = []
    devices = (((engine.get("deploy") or {}).get("resources") or {}).get("reservations") or {}).get("devices") or []
    if not any(d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) for d in devices):
        problems.append("inference has no GPU reservation")
    command = command_line(engine)
    from app.devstack.inference import STRUCTURED_OUTPUTS  # make run's engine takes the same

    options = ("--enable-lora", "--served-model-name ${INFERENCE_MODEL_ID}", "--trust-request-chat-template",
               f"--structured-outputs-config {STRUCTURED_OUTPUTS}")  # fmt: skip
    for option in options:
        if option not in command:
            problems.append(f"inference command lacks {option!r}")
    if str((engine.get("environment") or {}).get("VLLM_ALLOW_RUNTIME_LORA_UPDATING")) != "True":
        problems.append("inference does not allow runtime LoRA loading")
    if "finetuning_models:/data/models/finetuned:ro" not in [str(entry) for entry in engine.get("volumes") or []]:
        problems.append("inference does not mount the fine-tuned models read-only at /data/models/finetuned")
    return problems


def rule_redis(compose: Compose) -> list[str]:
    command = command_line(services(compose).get("redis", {}))
    problems = []
    for option in ("--maxmemory 2gb", "--maxmemory-policy noeviction", "--appendonly yes"):
        if option not in command:
            problems.append(f"redis command lacks {option!r}")
    return problems


def rule_mlflow(compose: Compose) -> list[str]:
    mlflow = services(compose).get("mlflow", {})
    command = command_line(mlflow)
    problems = []
    if "--artifacts-destination /mlflow/artifacts" not in command:
        problems.append("mlflow does not store artifacts in /mlflow/artifacts")
    allowed = re.search(r"--allowed-hosts (\S+)", command)
    if not allowed or "mlflow:5000" not in allowed.group(1):
        problems.append("mlflow --allowed-hosts must admit mlflow:5000 (the tracking URI of the services)")
    backend = str((mlflow.get("environment") or {}).get("MLFLOW_BACKEND_STORE_URI", ""))
    if not backend.startswith("postgresql"):
        problems.append("mlflow backend store is not PostgreSQL")
    return problems


def rule_networks(compose: Compose) -> list[str]:
    declared = compose.get("networks") or {}
    problems = []
    if not (declared.get("internal") or {}).get("internal"):
        problems.append("network `internal` is not internal: true")
    for name, service in services(compose).items():
        if service.get("network_mode") == "none":  # no network at all is stricter still
            continue
        joined = network_names(service)
        if "internal" not in joined:
            problems.append(f"{name} is not on the internal network")
        extra = joined - {"internal"} - EXTRA_NETWORKS.get(name, set())
        if extra:
            problems.append(f"{name} joins {sorted(extra)} besides the internal network")
    return problems


def rule_hardening(compose: Compose) -> list[str]:
    problems = []
    for name, service in services(compose).items():
        if "ALL" not in (service.get("cap_drop") or []):
            problems.append(f"{name}: cap_drop [ALL] is missing")
        if "no-new-privileges:true" not in (service.get("security_opt") or []):
            problems.append(f"{name}: security_opt no-new-privileges:true is missing")
        if service.get("read_only") is not True:
            problems.append(f"{name}: read_only root file system is off")
        if service.get("privileged") or service.get("cap_add"):
            problems.append(f"{name}: gains privileges (privileged / cap_add)")
        limits = ((service.get("deploy") or {}).get("resources") or {}).get("limits") or {}
        if "memory" not in limits:
            problems.append(f"{name}: no memory limit")
        if not _runs_unprivileged(service):
            problems.append(f"{name}: runs as root")
    return problems


def _runs_unprivileged(service: dict[str, Any]) -> bool:
    user = str(service.get("user", ""))
    if user:
        return user.split(":")[0] not in {"root", "0"}
    dockerfile = _build_dockerfile(service)
    if dockerfile is not None:
        return dockerfile.exists() and dockerfile_user(dockerfile).split(":")[0] not in {"root", "0"}
    return bool(NON_ROOT_IMAGES.match(str(service.get("image", ""))))


def rule_healthchecks(compose: Compose) -> list[str]:
    problems = []
    for name, service in services(compose).items():
        check = service.get("healthcheck") or {}
        if is_one_shot(service):
            continue
        if check.get("disable") or not check.get("test"):
            problems.append(f"{name} has no healthcheck")
    return problems


def rule_dependencies(compose: Compose) -> list[str]:
    all_services = services(compose)
    problems = []
    for name, service in all_services.items():
        for dependency, spec in (service.get("depends_on") or {}).items():
            target = all_services.get(dependency, {})
            wanted = "service_completed_successfully" if is_one_shot(target) else "service_healthy"
            if (spec or {}).get("condition") != wanted:
                problems.append(f"{name} waits for {dependency} with condition {spec}, expected {wanted}")
    for name in APP_SERVICES:
        if "migrate" not in (all_services.get(name, {}).get("depends_on") or {}):
            problems.append(f"{name} does not wait for the migrations")
    return problems


def rule_pinned_images(compose: Compose) -> list[str]:
    problems = []
    for name, service in services(compose).items():
        if "build" in service:
            continue
        image = str(service.get("image", ""))
        tag = image.rsplit(":", 1)[1] if ":" in image.split("/")[-1] else ""
        if not re.search(r"\d", tag) or tag == "latest":
            problems.append(f"{name}: image {image!r} is not pinned to a version tag")
    return problems


def rule_secrets_from_env(compose: Compose) -> list[str]:
    problems = []
    for name, service in services(compose).items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(key) and "${" not in str(value):
                problems.append(f"{name}: secret {key} is written into the compose file")
    return problems


RULES: tuple[Rule, ...] = (
    rule_services,
    rule_ports,
    rule_named_volumes,
    rule_gpu_worker,
    rule_cpu_worker,
    rule_one_code_source,
    rule_models_mount,
    rule_secrets_checked_first,
    rule_inference,
    rule_redis,
    rule_mlflow,
    rule_networks,
    rule_hardening,
    rule_healthchecks,
    rule_dependencies,
    rule_pinned_images,
    rule_secrets_from_env,
)


def violations(compose: Compose) -> list[str]:
    return [problem for rule in RULES for problem in rule(compose)]
