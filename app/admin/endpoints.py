"""Admin API routers (filled by the admin domain modules)."""

from __future__ import annotations

from fastapi import APIRouter

routers: list[APIRouter] = []
