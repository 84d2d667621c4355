"""Run in a child process by test_service.py: index one file through the vector service.

python tests/vectors/index_worker.py SERVICE_URL FILE_ID OWNER_ID ORGANIZATION_ID PATH
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

from app.vectors.client import VectorServiceClient
from app.vectors.embedder import get_embedder
from app.vectors.store import VectorStore


def main(arguments: list[str]) -> None:
    service_url, file_id, owner_id, organization_id, path, chunk_lines = arguments
    store = VectorStore(VectorServiceClient(service_url), get_embedder(), index_chunk_lines=int(chunk_lines))
    report = store.index_file(file_id, owner_id, organization_id, Path(path))
    print(json.dumps(asdict(report)))


if __name__ == "__main__":
    main(sys.argv[1:])
