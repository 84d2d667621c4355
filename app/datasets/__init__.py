"""The dataset formats the platform trains on, defined once for upload validation and training.

    codes.py    the one set of error codes a dataset line or file can get (docs/datasets.md lists them)
    schema.py   a chat / preference example: roles, fields, the checks of one parsed line
    lines.py    one JSONL line as a JSON object (UTF-8, strict JSON, bounded depth)

A ground floor: it imports nothing else from app, so app/training (which must stay pure) may use it.
"""
