"""What an API process holds: the core clients, the Cerbos authorizer and the API-key cache.

Built in the lifespan of each API process (never at import time) and closed at its end. Domain
services that take decisions receive it as `resources` and use `resources.authorizer`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.authz import Authorizer
from app.core.clients import Clients
from app.core.config import Settings
from app.users.credential_cache import CredentialCache


@dataclass
class Resources(Clients):
    authorizer: Authorizer
    credentials: CredentialCache
    extras: dict[str, object] = field(default_factory=dict)

    @classmethod
    def create(cls, settings: Settings, **engine_options: object) -> Resources:
        clients = Clients.connect(settings, engine_options=engine_options)
        return cls(
            **clients,
            authorizer=Authorizer(settings.cerbos_url, grpc_address=settings.cerbos_grpc_address),
            # Attached before the first query, so every pooled connection listens for key changes.
            credentials=CredentialCache.attach(clients["engine"], settings.credential_cache_seconds),
        )

    async def close(self) -> None:
        await self.authorizer.close()
        await super().close()
