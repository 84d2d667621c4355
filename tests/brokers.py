"""A database of the test Valkey that the platform's workers do not read, and a Celery app publishing to it.

The platform uses database 0; a test that must see messages stay where they were published (or feed a
worker of its own) uses another one, with the platform's Celery configuration.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from app.core.celery_app import create_celery_app


def unread_database_url(stack: Any, database: int) -> str:
    assert database != 0, "database 0 is the platform's"
    base, _, _ = stack.env["REDIS_URL"].rpartition("/")
    return f"{base}/{database}"


def celery_app_on(url: str) -> Celery:
    app = create_celery_app()
    app.conf.broker_url = url
    return app
