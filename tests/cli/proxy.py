"""A real TCP proxy in front of the user API that can cut live event streams mid-flight.

Used to prove `jobs watch` survives a dropped connection: the first `drops`
connections that carry an event stream are closed once `cut_after_bytes` of
the response have passed, wherever that falls (even inside an event).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field


@dataclass
class _Link:
    client: socket.socket
    upstream: socket.socket
    is_stream: bool = False
    streamed_bytes: int = 0


@dataclass
class DroppingProxy:
    upstream_port: int
    cut_after_bytes: int
    drops: int
    requests: list[str] = field(default_factory=list)
    cuts: int = 0

    def __post_init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            link = _Link(client, upstream)
            threading.Thread(target=self._pump_up, args=(link,), daemon=True).start()
            threading.Thread(target=self._pump_down, args=(link,), daemon=True).start()

    def _pump_up(self, link: _Link) -> None:
        while data := _recv(link.client):
            text = data.decode("latin-1")
            with self._lock:
                self.requests.append(text)
            if "stream=true" in text:
                link.is_stream = True
            try:
                link.upstream.sendall(data)
            except OSError:
                break
        _close(link)

    def _pump_down(self, link: _Link) -> None:
        while data := _recv(link.upstream):
            try:
                link.client.sendall(data)
            except OSError:
                break
            if link.is_stream:
                link.streamed_bytes += len(data)
                if link.streamed_bytes >= self.cut_after_bytes and self._take_drop():
                    break
        _close(link)

    def _take_drop(self) -> bool:
        with self._lock:
            if self.cuts >= self.drops:
                return False
            self.cuts += 1
            return True


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""


def _close(link: _Link) -> None:
    for sock in (link.client, link.upstream):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
