"""A Cerbos query plan turned into a SQL condition, so lists are filtered by the database.

The conditional case goes through `cerbos_sqlalchemy.get_query`, which already
translates the whole plan grammar (and/or/not, comparisons, `in`, ...) to
SQLAlchemy; only its `WHERE` is kept, so callers add the condition to their own
query (joins, pagination, ordering). Columns are mapped from the same
`POLICY_ATTRIBUTES` that single checks send, so a list shows exactly the rows a
`check` on each of them would allow.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from cerbos_sqlalchemy import get_query
from sqlalchemy import ColumnElement, Table, false, inspect, true
from sqlalchemy.orm import DeclarativeBase

from app.authz.kinds import POLICY_ATTRIBUTES
from app.authz.transport import Plan

ATTRIBUTE_PREFIX = "request.resource.attr."
RESOURCE_ID = "request.resource.id"

TableLike = Table | type[DeclarativeBase]


class UntranslatablePlanError(RuntimeError):
    """The policies refer to something this table cannot express: a bug, never a silent allow."""


def as_table(table: TableLike) -> Table:
    if isinstance(table, Table):
        return table
    local_table = inspect(table).local_table
    if not isinstance(local_table, Table):
        raise TypeError(f"{table!r} is not mapped to a single table")
    return local_table


def attribute_columns(table: Table, overrides: Mapping[str, ColumnElement[Any]] | None = None) -> dict[str, Any]:
    """Plan variable -> column: `id` and each policy attribute the table has, then the overrides."""
    columns: dict[str, Any] = {}
    if "id" in table.c:
        columns[RESOURCE_ID] = table.c.id
    for name in POLICY_ATTRIBUTES:
        if name in table.c:
            columns[ATTRIBUTE_PREFIX + name] = table.c[name]
    for name, column in (overrides or {}).items():
        columns[ATTRIBUTE_PREFIX + name] = column
    return columns


def plan_to_condition(
    plan: Plan,
    table: TableLike,
    overrides: Mapping[str, ColumnElement[Any]] | None = None,
) -> ColumnElement[bool]:
    """The rows of `table` the plan allows; `overrides` maps attribute names to columns of `table`."""
    if plan.outcome == "denied":
        return false()
    if plan.outcome == "allowed":
        return true()
    resolved = as_table(table)
    try:
        # get_query reads either transport's response (the SDK's dataclass or its protobuf message).
        where = get_query(plan.response, resolved, attribute_columns(resolved, overrides)).whereclause
    except (KeyError, TypeError, ValueError) as error:
        raise UntranslatablePlanError(
            f"cannot translate the {plan.resource_kind!r} plan to SQL on {resolved.name!r}: {error}"
        ) from error
    if where is None:
        raise UntranslatablePlanError(f"the {plan.resource_kind!r} plan produced no condition")
    return where


class TranslatedPlans:
    """The SQL condition of each plan already translated, found again by the plan's condition.

    A memo of a pure function, not of a decision: Cerbos still answers every list request, and
    only an answer identical to an earlier one (the same principal listing the same kind again)
    reuses the SQL built from it. `cerbos_sqlalchemy.get_query` walks a plan in Python, about a
    tenth of a job list's time in the API process (docs/evidence.md §8). An answer without a
    `condition_key` (the HTTP transport's) is translated every time. Used from its process's event
    loop only (the API's `Authorizer`), so nothing here needs a lock: no `await` falls between a
    lookup and its store.
    """

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        # key -> (condition, what the key's ids name: held so that no id is reused while cached)
        self._conditions: OrderedDict[tuple[Any, ...], tuple[ColumnElement[bool], tuple[Any, ...]]] = OrderedDict()

    def condition(
        self, plan: Plan, table: TableLike, overrides: Mapping[str, ColumnElement[Any]] | None = None
    ) -> ColumnElement[bool]:
        if plan.outcome != "conditional" or plan.condition_key is None:
            return plan_to_condition(plan, table, overrides)
        mapped = tuple((overrides or {}).items())
        key = (plan.resource_kind, plan.condition_key, id(table), tuple((name, id(column)) for name, column in mapped))
        found = self._conditions.get(key)
        if found is not None:
            self._conditions.move_to_end(key)
            return found[0]
        condition = plan_to_condition(plan, table, overrides)
        self._conditions[key] = (condition, (table, mapped))
        if len(self._conditions) > self._size:
            self._conditions.popitem(last=False)
        return condition

    def __len__(self) -> int:
        return len(self._conditions)
