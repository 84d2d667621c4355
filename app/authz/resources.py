"""The clients of a process that takes authorization decisions: the core ones and the Cerbos authorizer.

Built in the lifespan of each API process (never at import time) and closed at its end. Domain
services that decide receive it as `resources` and ask `resources.authorizer`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.authz.service import Authorizer
from app.core.clients import Clients
from app.core.config import Settings


@dataclass
class Resources(Clients):
    authorizer: Authorizer
    extras: dict[str, object] = field(default_factory=dict)

    @classmethod
    def create(cls, settings: Settings, **engine_options: object) -> Resources:
        clients = Clients.connect(settings, engine_options=engine_options)
        return cls(**clients, authorizer=Authorizer(settings.cerbos_url, grpc_address=settings.cerbos_grpc_address))

    async def close(self) -> None:
        await self.authorizer.close()
        await super().close()
