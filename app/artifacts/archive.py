"""Artifacts on disk: manifests with checksums, and tar streams built on the fly (never in memory)."""

from __future__ import annotations

import hashlib
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
CHUNK_BYTES = 1024 * 1024
BLOCK = tarfile.BLOCKSIZE


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != MANIFEST)


def write_manifest(root: Path) -> list[dict[str, Any]]:
    entries = [
        {"path": str(p.relative_to(root)), "bytes": p.stat().st_size, "sha256": sha256_of(p)} for p in files_under(root)
    ]
    (root / MANIFEST).write_text(json.dumps({"files": entries}, indent=1))
    return entries


def read_manifest(root: Path) -> list[dict[str, Any]]:
    manifest = root / MANIFEST
    if not manifest.exists():
        return write_manifest(root)
    return list(json.loads(manifest.read_text())["files"])


def safe_member(root: Path, relative: str) -> Path | None:
    """The file `relative` under `root`, or None if it escapes `root` or does not exist."""
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root.resolve()) or not candidate.is_file():
        return None
    return candidate


def tar_stream(root: Path, prefix: str) -> Iterator[bytes]:
    """A POSIX tar of every file under `root`, produced one chunk at a time."""
    for path in files_under(root):
        info = tarfile.TarInfo(name=f"{prefix}/{path.relative_to(root)}")
        info.size = path.stat().st_size
        info.mtime = int(path.stat().st_mtime)
        info.mode = 0o644
        yield info.tobuf(format=tarfile.PAX_FORMAT)
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK_BYTES):
                yield chunk
        remainder = info.size % BLOCK
        if remainder:
            yield b"\0" * (BLOCK - remainder)
    yield b"\0" * (BLOCK * 2)
