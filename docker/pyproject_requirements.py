#!/usr/bin/env python3
"""Print the dependencies that pyproject.toml declares, one requirement a line.

    python pyproject_requirements.py pyproject.toml [--extra train ...]

The images install dependencies from this list in a layer of their own, before the
source is copied, so a code change rebuilds in seconds; pyproject.toml stays the one
place where dependencies are declared. The project itself is not installed as a
package: the code lives at /app/app (PYTHONPATH=/app), which is also where the worker's
read-only code mount lands.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path


def requirements(pyproject: Path, extras: list[str]) -> list[str]:
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    optional = project.get("optional-dependencies", {})
    unknown = sorted(set(extras) - set(optional))
    if unknown:
        raise ValueError(f"pyproject.toml declares no extra named {', '.join(unknown)}")
    lines = list(project.get("dependencies", []))
    for extra in extras:
        lines.extend(optional[extra])
    return lines


def main(arguments: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pyproject", type=Path)
    parser.add_argument("--extra", action="append", default=[], help="an optional-dependencies group")
    options = parser.parse_args(arguments)
    print("\n".join(requirements(options.pyproject, options.extra)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
