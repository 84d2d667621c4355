"""Kombu's Redis transport, with a closed connection's channels failing as closed connections do.

When a worker loses the broker, Celery collects the connection: kombu detaches the transport
from it (`transport.client = None`). Anything done afterwards on a channel of that connection
(the restore of its unacknowledged messages when Celery 5.7.0 closes it once more, the ack of
a task that was running during the outage) then read `client.hostname` and raised
AttributeError. That is not one of the connection errors Celery expects at those points, so
the worker process died of it, beat and its reconcilers with the CPU worker
(`tests/chaos/test_broker_loss.py`, red with kombu's own transport).

Here such a channel raises redis' ConnectionError instead: closing it is a no-op, the ack is
logged as not made (the message stays unacknowledged in the broker and is delivered again
after the visibility timeout; tasks are idempotent), and the worker reconnects.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError

TRANSPORT = "app.core.broker_transport:Transport"


class Channel(kombu_redis.Channel):  # type: ignore[misc]
    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        if self.connection.client is None:
            raise RedisConnectionError("this channel's broker connection was closed after it was lost")
        params: dict[str, Any] = super()._connparams(asynchronous=asynchronous)
        return params


class Transport(kombu_redis.Transport):  # type: ignore[misc]
    Channel = Channel
