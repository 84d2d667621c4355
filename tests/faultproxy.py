"""A TCP proxy in front of one server, so a test can make that server slow or make it go away.

The platform's processes are given the proxy's address. `stop()` closes the listener and every
open connection with a FIN (what a server's clean shutdown looks like to its clients), `kill()`
with a reset (what a crashed server looks like), `start()` listens again on the same port, and
`delay_seconds` holds every chunk a client sends before it reaches the server (a slow server).
Used for the servers the harness does not own (a configured DATABASE_URL or REDIS_URL) and for
MLflow in the worker tests.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from urllib.parse import urlsplit, urlunsplit


class FaultProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.upstream_url: str | None = None  # set by `in_front_of`
        self.delay_seconds = 0.0
        self._lock = threading.Lock()
        self._links: set[socket.socket] = set()
        self._resetting: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self.port = 0
        self.start()

    @classmethod
    def in_front_of(cls, url: str) -> tuple[FaultProxy, str]:
        """A proxy for the server of `url` (any scheme with host:port), and the same URL through the proxy."""
        parts = urlsplit(url)
        proxy = cls(parts.hostname or "127.0.0.1", parts.port or _DEFAULT_PORTS[parts.scheme.split("+")[0]])
        proxy.upstream_url = url
        credentials = parts.netloc.rpartition("@")[0]
        netloc = f"{credentials}@127.0.0.1:{proxy.port}" if credentials else f"127.0.0.1:{proxy.port}"
        return proxy, urlunsplit(parts._replace(netloc=netloc))

    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    @property
    def listening(self) -> bool:
        return self._listener is not None

    def stop(self) -> None:
        self._close(reset=False)

    def kill(self) -> None:
        self._close(reset=True)

    def _close(self, reset: bool) -> None:
        if self._listener is not None:
            # shutdown() first: close() alone does not wake the accept() blocked in the other thread,
            # which would go on taking connections on the closed socket.
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            links, self._links = self._links, set()
        for link in links:
            with contextlib.suppress(OSError):
                if reset:
                    # Linger 0: the close that the woken pump makes sends a RST. SHUT_RD only wakes
                    # that pump (a close from here would wait for its recv), and sends nothing.
                    self._resetting.add(link)
                    link.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    link.shutdown(socket.SHUT_RD)
                else:
                    link.shutdown(socket.SHUT_RDWR)
                    link.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by stop() / kill()
            try:
                upstream = socket.create_connection(self.upstream, timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._links.update((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, delayed: bool) -> None:
        try:
            while data := source.recv(65536):
                if delayed and self.delay_seconds:
                    time.sleep(self.delay_seconds)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            if source not in self._resetting:  # a FIN both ways; a reset link must close without one
                for end in (source, sink):
                    with contextlib.suppress(OSError):
                        end.shutdown(socket.SHUT_RDWR)
            with self._lock:
                self._links.discard(source)
            self._resetting.discard(source)
            source.close()  # the other pump, woken too, closes its own


_DEFAULT_PORTS = {"postgresql": 5432, "postgres": 5432, "redis": 6379, "http": 80}
