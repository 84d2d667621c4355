"""The hot read paths (a job or file retrieved, a page of a list): SQLAlchemy builds and compiles the
SELECT, once per shape; asyncpg runs it on the request's own connection; rows come back as plain tuples.

Why not the ORM here. A job list's page through `session.scalars(select(Job)...)` cost 1.3-1.5 ms
in its session on an idle machine, the same SQL as an asyncpg prepared statement 0.5 ms
(docs/evidence.md §8, sessions 33 and 34): building the statement anew, the ORM's execution and
loading (identity map, instance state for each of 37 columns), and the `BEGIN` and `COMMIT` round
trips of a transaction around one `SELECT`. Here:

- A `Shape` is one statement compiled once, kept (LRU) by what it was built from; each request
  supplies only the values of its named `bindparam`s. Compilation is SQLAlchemy's own, for the
  engine's dialect, so the SQL is exactly what the ORM would have sent for the same query, and
  each value goes through its column type's bind processor as it would there.
- The statement runs on the request's connection (the one authentication checked out and pinged),
  outside a transaction when the session has not begun one: one `SELECT` reads one consistent
  snapshot, and there is nothing to commit. asyncpg keeps the prepared statement per connection.
- Each row is an `EntityRows.row` named tuple with the entity's attribute names (`metadata_`, not
  the column's `metadata`) and the values the ORM would hold (the same codecs: json through
  `json_from_database`; each type's result processor). It is read-only and belongs to no session:
  nothing here may be changed and flushed. Paths that change a row load it through the ORM.

A driver error becomes SQLAlchemy's `DBAPIError` (the cause kept), so the API answers it exactly
as before: 400 for a value PostgreSQL refused, 503 while the database is away.
"""

from __future__ import annotations

from collections import OrderedDict, namedtuple
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import asyncpg
from sqlalchemy import Integer, Select, bindparam, inspect, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession

E = TypeVar("E")
MAX_SHAPES = 4096


@dataclass(frozen=True)
class Compiled:
    """One statement's SQL for asyncpg, its fixed arguments, and where each request's values go."""

    sql: str
    arguments: tuple[Any, ...]  # in placeholder order; the slots of `variables` are filled per request
    variables: tuple[tuple[int, str, Callable[[Any], Any] | None], ...]  # (position, bindparam, processor)
    anchors: tuple[Any, ...]  # what the shape's key names by identity, held so no id is reused while kept

    def arguments_for(self, values: Mapping[str, Any]) -> list[Any]:
        arguments = list(self.arguments)
        for position, name, processor in self.variables:
            value = values[name]
            arguments[position] = processor(value) if processor is not None and value is not None else value
        return arguments


def compile_for_asyncpg(statement: Select[Any], dialect: Dialect, variables: Sequence[str],
                        anchors: tuple[Any, ...] = ()) -> Compiled:  # fmt: skip
    """`statement` as asyncpg SQL; `variables` name the bindparams given per request, all others are fixed.

    Expanding parameters (`IN` of a fixed list, which a plan may hold) are rendered at compile time.
    """
    compiled = statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    if not compiled.positional or compiled.positiontup is None:
        raise TypeError(f"{dialect.name} does not compile to positional parameters")
    # The variables' values come per request; None stands in for them here.
    defaults = compiled.construct_params(dict.fromkeys(variables), escape_names=False)
    processors = {
        name: bind.type.dialect_impl(dialect).bind_processor(dialect) for name, bind in compiled.binds.items()
    }
    arguments: list[Any] = []
    slots = []
    for position, name in enumerate(compiled.positiontup):
        if name in variables:
            slots.append((position, name, processors.get(name)))
            arguments.append(None)
            continue
        if name not in defaults:
            raise TypeError(f"no value for the fixed parameter {name!r}")
        value, processor = defaults[name], processors.get(name)
        arguments.append(processor(value) if processor is not None and value is not None else value)
    missing = set(variables) - {name for _, name, _ in slots}
    if missing:
        raise TypeError(f"the statement has no parameter {sorted(missing)}")
    return Compiled(compiled.string, tuple(arguments), tuple(slots), anchors)


class EntityRows(Generic[E]):
    """Reads of one mapped class's columns as named tuples, through shapes compiled once.

    `select()` starts a statement of the entity's columns in the mapper's order; `all` runs a shape
    built by `build` (called only when `key` is not kept), with the request's `values`.
    """

    def __init__(self, entity: type[E], size: int = MAX_SHAPES) -> None:
        mapper = inspect(entity)
        attributes = list(mapper.column_attrs)
        self.entity = entity
        self.columns = [attribute.columns[0] for attribute in attributes]
        # A class made at run time: its fields are the mapper's, which mypy cannot see.
        self.row: Any = namedtuple(f"{entity.__name__}Row", [attribute.key for attribute in attributes])  # type: ignore[misc]
        self._size = size
        self._shapes: OrderedDict[Hashable, Compiled] = OrderedDict()
        self._result_processors: dict[str, list[tuple[int, Callable[[Any], Any]]]] = {}

    def select(self) -> Select[Any]:
        return select(*self.columns)

    async def _processors(
        self, driver: asyncpg.Connection, sql: str, dialect: Dialect
    ) -> list[tuple[int, Callable[[Any], Any]]]:
        """Each column's result processor, for the types PostgreSQL gives the statement's columns (the
        ORM's choice depends on them: a numeric one on the type's oid); found on a shape's first use."""
        found = self._result_processors.get(sql)
        if found is None:
            attributes = (await driver.prepare(sql)).get_attributes()
            found = []
            for position, (column, attribute) in enumerate(zip(self.columns, attributes, strict=True)):
                processor = column.type.dialect_impl(dialect).result_processor(dialect, attribute.type.oid)
                if processor is not None:
                    found.append((position, processor))
            if len(self._result_processors) >= self._size:
                self._result_processors.clear()
            self._result_processors[sql] = found
        return found

    def shape(self, key: Hashable, build: Callable[[], Select[Any]], variables: Sequence[str], dialect: Dialect,
              anchors: tuple[Any, ...] = ()) -> Compiled:  # fmt: skip
        found = self._shapes.get(key)
        if found is not None and all(kept is given for kept, given in zip(found.anchors, anchors, strict=True)):
            self._shapes.move_to_end(key)
            return found
        compiled = compile_for_asyncpg(build(), dialect, variables, anchors)
        self._shapes[key] = compiled
        if len(self._shapes) > self._size:
            self._shapes.popitem(last=False)
        return compiled

    async def all(
        self,
        session: AsyncSession,
        key: Hashable,
        build: Callable[[], Select[Any]],
        values: Mapping[str, Any],
        anchors: tuple[Any, ...] = (),
    ) -> list[Any]:
        """The rows of the shape `key` (`anchors`: objects the key names by `id`, checked to be the same)."""
        connection = await session.connection()
        dialect = connection.dialect
        compiled = self.shape(key, build, tuple(values), dialect, anchors)
        raw = await connection.get_raw_connection()
        driver: asyncpg.Connection = raw.driver_connection  # type: ignore[assignment]
        arguments = compiled.arguments_for(values)
        try:
            processors = await self._processors(driver, compiled.sql, dialect)
            records = await driver.fetch(compiled.sql, *arguments)
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            raise sa_exc.DBAPIError(compiled.sql, arguments, error) from error
        make = self.row._make
        if not processors:
            return [make(record) for record in records]
        rows = []
        for record in records:
            values_of_row = list(record)
            for position, processor in processors:
                values_of_row[position] = processor(values_of_row[position])
            rows.append(make(values_of_row))
        return rows

    async def page(
        self,
        session: AsyncSession,
        key: Hashable,
        build: Callable[[], Select[Any]],
        values: Mapping[str, Any],
        *,
        after: str | None,
        limit: int,
        descending: bool = True,
        anchors: tuple[Any, ...] = (),
    ) -> tuple[list[Any], bool]:
        """`app.core.pagination.fetch_page` as a shape: one page after the cursor `after` by `id`, and
        whether more follow; `build` gives the filtered statement, the cursor, order and limit are added."""
        id_column = self.entity.id  # type: ignore[attr-defined]

        def paged() -> Select[Any]:
            query = build()
            if after is not None:
                cursor = bindparam("page_after", type_=id_column.type)
                query = query.where(id_column < cursor if descending else id_column > cursor)
            order = id_column.desc() if descending else id_column.asc()
            return query.order_by(order).limit(bindparam("page_limit", type_=Integer()))

        shaped = {**values, "page_limit": limit + 1, **({"page_after": after} if after is not None else {})}
        rows = await self.all(session, ("page", key, after is not None, descending), paged, shaped, anchors)
        return rows[:limit], len(rows) > limit

    async def one_or_none(
        self,
        session: AsyncSession,
        key: Hashable,
        build: Callable[[], Select[Any]],
        values: Mapping[str, Any],
        anchors: tuple[Any, ...] = (),
    ) -> Any | None:
        rows = await self.all(session, key, build, values, anchors)
        if len(rows) > 1:
            raise sa_exc.MultipleResultsFound(f"more than one {self.entity.__name__} row for {dict(values)}")
        return rows[0] if rows else None
