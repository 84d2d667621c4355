"""The embedded Cerbos server: starts on given ports, answers health, stops for good."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from app.devstack.cerbos import CerbosNotInstalledError, CerbosServer, cerbos_binary
from app.devstack.processes import port_open


def test_start_serve_stop(cerbos_path: Path, tmp_path: Path) -> None:
    server = CerbosServer(tmp_path, binary=cerbos_path)
    server.start()
    try:
        assert httpx.get(f"{server.url}/_cerbos/health").json() == {"status": "SERVING"}
        assert port_open(server.grpc_port)
        config = (tmp_path / "cerbos.yaml").read_text()
        assert "watchForChanges: false" in config
        assert f"127.0.0.1:{server.http_port}" in config
    finally:
        server.stop()
    assert server.process.exited()
    assert not port_open(server.http_port)


def test_broken_policies_fail_the_start(cerbos_path: Path, tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "broken.yaml").write_text("apiVersion: api.cerbos.dev/v1\nresourcePolicy: {resource: 42\n")
    server = CerbosServer(tmp_path / "work", policies_dir=policies, binary=cerbos_path)
    with pytest.raises((RuntimeError, TimeoutError), match=r"cerbos\.log"):
        server.start(timeout=15)
    assert server.process.exited()


def test_missing_binary_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(CerbosNotInstalledError, match=r"scripts/install-cerbos\.sh"):
        cerbos_binary(tmp_path)
