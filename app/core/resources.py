"""The clients one process holds: built at start-up (lifespan, worker init), closed at shutdown."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from app.core.clients import Clients
from app.core.config import Settings

if TYPE_CHECKING:
    from app.authz import Authorizer


@dataclass
class Resources(Clients):
    authorizer: Authorizer
    extras: dict[str, object] = field(default_factory=dict)

    @classmethod
    def create(cls, settings: Settings, **engine_options: object) -> Resources:
        from app.authz import Authorizer

        clients = Clients.connect(settings, engine_options=engine_options)
        return cls(**clients, authorizer=Authorizer(settings.cerbos_url))

    async def close(self) -> None:
        await self.authorizer.close()
        await super().close()
