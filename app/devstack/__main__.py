"""`make run`: the whole platform on this machine, on embedded servers.

python -m app.devstack            start everything, print URLs and first keys, run until Ctrl-C
python -m app.devstack --check-only   only check the configured database answers (fail fast)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path

from app.core.config import get_settings
from app.core.migrations import check_database, upgrade_head
from app.devstack.bootstrap import DEMO_MODEL_ID, bootstrap
from app.devstack.processes import CrashLoopError, RestartPolicy
from app.devstack.stack import Ports, Stack, configured_urls
from app.training.tiny_model import build_tiny_model

logger = logging.getLogger("devstack")


def _ports_from_env() -> Ports:
    ports = Ports()
    for name in vars(ports):
        value = os.environ.get(f"DEVSTACK_{name.upper()}_PORT")
        if value:
            setattr(ports, name, int(value))
    return ports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.devstack", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check-only", action="store_true", help="only check that DATABASE_URL answers")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # The readiness polls (the engine takes a minute to load) would print a line each.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    configured = configured_urls(Path(".env"))
    if "DATABASE_URL" in configured:
        check_database(configured["DATABASE_URL"])
    if args.check_only:
        return 0

    data_dir = Path(configured.pop("DATA_DIR", "./data"))
    stack = Stack(data_dir=data_dir, ports=_ports_from_env(), environment="development", configured=configured)
    stopping = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        return _run(stack, lambda: stopping)
    finally:
        logger.info("stopping every process we started")
        stack.stop()


def _run(stack: Stack, stopping: object) -> int:
    started = time.monotonic()
    env = stack.start_servers()
    os.environ.update(env)
    get_settings.cache_clear()
    settings = get_settings()
    upgrade_head(env["DATABASE_URL"])
    demo_model = build_tiny_model(stack.data_dir / "models" / "base" / "tiny-llama-demo")
    keys = asyncio.run(bootstrap(settings, stack.data_dir / "first-keys.env", demo_model))
    # Configured engines (real vLLM servers) are used as they are; else the demo model gets one here.
    engines = json.loads(os.environ.get("INFERENCE_ENGINES") or "{}")
    if not engines:
        max_loras = settings.inference_max_loras
        stack.start_inference(DEMO_MODEL_ID, demo_model, stack.ports.inference, max_loras)
        engines = {DEMO_MODEL_ID: f"http://127.0.0.1:{stack.ports.inference}"}
    stack.env["INFERENCE_ENGINES"] = json.dumps(engines)
    stack.start_api("user")
    stack.start_api("admin")
    stack.start_worker("gpu")
    stack.start_worker("cpu,evals")  # eval runs share the CPU worker here; compose gives them the same
    # /ready includes the engine: both APIs answer 200 once the demo model is served.
    stack.wait_ready(stack.ports.user_api, timeout=300)
    stack.wait_ready(stack.ports.admin_api, timeout=300)
    print(f"\nFine-tuning MLOps is up in {time.monotonic() - started:.0f}s (state in {stack.data_dir})")
    print(f"  user API   http://127.0.0.1:{stack.ports.user_api}/v1   (docs: /docs)")
    print(f"  console    http://127.0.0.1:{stack.ports.user_api}/   (sign in with USER_API_KEY)")
    print(f"  admin API  http://127.0.0.1:{stack.ports.admin_api}/admin/v1   (127.0.0.1 only)")
    print(f"  MLflow     {env['MLFLOW_TRACKING_URI']}")
    print(f"  Cerbos     {env['CERBOS_URL']}")
    for served, url in engines.items():
        print(f"  vLLM       {url}   (serves {served} and its fine-tuned adapters)")
    print(f"  logs       {stack.log_dir}")
    print(f"  demo base model: {DEMO_MODEL_ID} (fine-tune it, then chat with it: finetune chat MODEL)")
    if keys is not None:
        print("\nFirst keys (shown once; also in data/first-keys.env, mode 600):")
        print(f"ADMIN_API_KEY={keys.admin}")
        print(f"USER_API_KEY={keys.user}")
    print("\nCtrl-C stops everything.", flush=True)
    restarts = RestartPolicy()
    while not stopping():  # type: ignore[operator]
        try:
            for name, code in restarts.check(stack.processes):
                print(f"{name} exited with code {code}; started it again", file=sys.stderr, flush=True)
        except CrashLoopError as error:
            print(f"{error}; stopping the stack", file=sys.stderr)
            return 1
        time.sleep(1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
