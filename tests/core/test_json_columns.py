"""json/jsonb values read back from a real PostgreSQL are the values written, digit for digit.

The engine decodes them with orjson, except where orjson would turn a number into a float
(an integer past 64 bits) or round it (a long decimal): those go through the standard library.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, insert, select
from sqlalchemy.dialects.postgresql import JSON, JSONB

from app.core.config import Settings
from app.core.database import create_engine, json_from_database

VALUES = [
    {"n_epochs": 3, "learning_rate_multiplier": 0.1, "lora_alpha": 32, "targets": ["q_proj", "v_proj"]},
    {"metadata": {"team": "søk", "emoji": "🦙", "quote": 'say "hi"\n'}},
    {"big": 123456789012345678901234567890, "negative": -98765432109876543210},
    {"max_int64": 9223372036854775807, "past": 18446744073709551616},
    {"tiny": 1e-300, "many_digits": 0.1234567890123456789, "zero": 0.0, "none": None, "no": False},
    [1, "two", [3.5, {"four": 4}]],
    "a string of 20 digits: 12345678901234567890",
    12345678901234567890123,
    None,
]


@pytest.mark.parametrize("column_type", [JSONB, JSON])
async def test_values_come_back_as_written(settings: Settings, column_type: type) -> None:
    table = Table("json_values", MetaData(), Column("id", Integer, primary_key=True),
                  Column("value", column_type(none_as_null=True)), prefixes=["TEMPORARY"])  # fmt: skip
    engine = create_engine(settings, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(table.create)
            await connection.execute(insert(table), [{"id": n, "value": value} for n, value in enumerate(VALUES)])
            read = dict((await connection.execute(select(table.c.id, table.c.value))).tuples().all())
    finally:
        await engine.dispose()
    assert [read[n] for n in range(len(VALUES))] == VALUES
    assert type(read[2]["big"]) is int and type(read[3]["past"]) is int  # not floats


def test_long_numbers_are_read_exactly() -> None:
    text = '{"big": 123456789012345678901234567890, "long": 0.12345678901234567890123}'
    assert json_from_database(text) == json.loads(text)
    assert json_from_database(text)["big"] == 123456789012345678901234567890
    assert Decimal(repr(json_from_database(text)["long"])) == Decimal(repr(json.loads(text)["long"]))
