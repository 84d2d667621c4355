"""The shape of app/: no import cycle, a ground floor that imports nothing above it, short modules.

The import graph is read from the source with `ast`, so every import counts: those under
`TYPE_CHECKING` and those inside functions too (they are edges Python takes at run time).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app"
MAX_MODULE_LINES = 450
# Domain imports app/core still makes, each with the issue that removes it. A new one fails the test.
CORE_ALLOWED_DOMAIN_IMPORTS: set[tuple[str, str]] = set()
# Imports inside functions with no reason stated yet, each with the issue that removes it.
UNEXPLAINED_IMPORTS_ALLOWED: set[str] = set()
# app/training runs from a Celery worker, a CLI or a notebook: it may lean only on itself and on the
# dataset schema (app/datasets), a ground-floor package that itself imports nothing else from app.
TRAINING_MAY_IMPORT = ("app.training", "app.datasets")


def _module_name(path: Path) -> str:
    parts = path.relative_to(APP.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(APP.rglob("*.py"))}


def _imported(node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    """The app modules a statement imports: `from app.x import y` is app.x.y when that is a module."""
    modules = _modules()
    if isinstance(node, ast.ImportFrom) and node.level:
        raise AssertionError(f"relative import at line {node.lineno}: app/ imports absolutely")
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
    for name in names:
        while name and name not in modules:  # `import app.x.y.z` of a name inside a module
            name = name.rpartition(".")[0]
        if name.startswith("app."):
            yield name


@cache
def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in _modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        edges = {
            target
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for target in _imported(node)
        }
        graph[name] = edges - {name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _outside(prefixes: tuple[str, ...]) -> list[tuple[str, str]]:
    def inside(name: str) -> bool:
        return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)

    return sorted(
        (module, target)
        for module, targets in _graph().items()
        if inside(module)
        for target in targets
        if not inside(target)
    )


def test_the_graph_is_read() -> None:
    graph = _graph()
    assert "app.core.database" in graph["app.jobs.tables"]
    assert "app.training.callbacks" in graph["app.training.__main__"]


def test_no_import_cycle_among_app_modules() -> None:
    assert _cycles(_graph()) == []


def test_a_cycle_would_be_found() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_core_imports_no_domain_package() -> None:
    offenders = [edge for edge in _outside(("app.core",)) if edge not in CORE_ALLOWED_DOMAIN_IMPORTS]
    assert offenders == []


def test_training_imports_nothing_outside_itself() -> None:
    assert _outside(TRAINING_MAY_IMPORT) == []
    assert _outside(("app.datasets",)) == []


def test_no_module_over_the_line_limit() -> None:
    long = {
        name: lines
        for name, path in _modules().items()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def _deferred_imports(tree: ast.Module) -> Iterator[list[ast.stmt]]:
    """Runs of adjacent import statements inside a function (each run once, nested functions included)."""
    blocks = {
        id(block): block
        for function in ast.walk(tree)
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
        for node in ast.walk(function)
        for field in ("body", "orelse", "finalbody", "handlers")
        if isinstance(block := getattr(node, field, None), list)
    }
    for block in blocks.values():
        run: list[ast.stmt] = []
        for statement in [*block, None]:
            if isinstance(statement, ast.Import | ast.ImportFrom):
                run.append(statement)
                continue
            if run:
                yield run
            run = []


def test_every_import_inside_a_function_says_why() -> None:
    """An import hidden in a function hides an edge of the graph: it needs a reason next to it."""
    unexplained = []
    for name, path in _modules().items():
        lines = path.read_text(encoding="utf-8").splitlines()
        for run in _deferred_imports(ast.parse("\n".join(lines))):
            first, last = run[0].lineno, run[-1].end_lineno or run[-1].lineno
            above = lines[first - 2].strip() if first > 1 else ""
            trailing = any("#" in lines[number - 1] for number in range(first, last + 1))
            if not (above.startswith("#") or trailing) and name not in UNEXPLAINED_IMPORTS_ALLOWED:
                unexplained.append(f"{name}:{first}")
    assert unexplained == []


def test_migrations_form_one_line() -> None:
    """Branches that each add a migration on the same parent leave two heads, and `upgrade head` refuses."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(Config(str(APP.parent / "alembic.ini")))
    assert len(scripts.get_heads()) == 1, f"alembic heads {scripts.get_heads()}: set one's down_revision to the other"


def _api_routes(routes: Sequence[object]) -> Iterator[object]:
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI's include_router keeps the router whole
        if included is not None:
            yield from _api_routes(included.routes)
        elif hasattr(route, "dependant"):
            yield route


def _dependency_calls(dependant: object) -> Iterator[object]:
    for sub in getattr(dependant, "dependencies", ()):
        yield sub.call
        yield from _dependency_calls(sub)


def test_every_route_dependency_runs_on_the_event_loop() -> None:
    """FastAPI runs a plain `def` dependency in a worker thread: a thread hop per request for an attribute read."""
    import inspect  # here: the apps import the whole platform, which the other tests here must not need

    from app.api.admin_app import app as admin_app
    from app.api.user_app import app as user_app

    checked, in_threads = 0, []
    for app in (user_app, admin_app):
        for route in _api_routes(app.routes):
            for call in _dependency_calls(route.dependant):  # type: ignore[attr-defined]
                checked += 1
                # a function, or an object whose __call__ is one (HTTPBearer)
                candidates = (call, type(call).__call__)
                if not any(inspect.iscoroutinefunction(f) or inspect.isasyncgenfunction(f) for f in candidates):
                    in_threads.append(f"{route.path}: {getattr(call, '__qualname__', call)}")  # type: ignore[attr-defined]
    assert checked > 100
    assert not in_threads, in_threads
