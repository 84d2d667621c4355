"""A thin HTTP client for the public user API: OpenAI's error shape in, `CliError`s out."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any
from urllib.parse import quote

import httpx

from app.cli.config import Connection
from app.cli.errors import ApiError, ConnectionFailed

DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)


def _user_agent() -> str:
    try:
        return f"finetune-cli/{version('finetune-mlops')}"
    except PackageNotFoundError:
        return "finetune-cli"


def path_segment(value: str) -> str:
    """An id inside a URL path; fine-tuned model names keep their `:` (and a hub id its `/`)."""
    return quote(value, safe=":/@")


class ApiClient:
    def __init__(self, connection: Connection, *, timeout: httpx.Timeout = DEFAULT_TIMEOUT) -> None:
        headers = {"User-Agent": _user_agent(), "Accept": "application/json"}
        if connection.api_key:
            headers["Authorization"] = f"Bearer {connection.api_key}"
        self.base_url = connection.base_url
        self._http = httpx.Client(base_url=connection.base_url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any = None, *, timeout: float | None = None) -> Any:
        return self.request("POST", path, json=body, timeout=timeout)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: Iterable[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Any:
        with self._translated(path):
            response = self._http.request(
                method,
                path,
                params=_clean(params),
                json=json,
                content=content,
                headers=headers,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        raise_for_error(response)
        return response.json()

    @contextmanager
    def stream(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: httpx.Timeout | None = None,
        method: str = "GET",
        json: Any = None,
    ) -> Iterator[httpx.Response]:
        """A request whose body is read by the caller; errors while reading it are translated too."""
        with self._translated(path):
            request = self._http.build_request(
                method,
                path,
                params=_clean(params),
                json=json,
                headers=headers,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
            response = self._http.send(request, stream=True)
            try:
                if response.is_error:
                    response.read()
                    raise_for_error(response)
                yield response
            finally:
                response.close()

    @contextmanager
    def _translated(self, path: str) -> Iterator[None]:
        try:
            yield
        except httpx.TimeoutException as error:
            raise ConnectionFailed(self.url(path), f"timed out ({type(error).__name__})") from None
        except (httpx.TransportError, httpx.InvalidURL) as error:
            raise ConnectionFailed(self.url(path), str(error) or type(error).__name__) from None


def raise_for_error(response: httpx.Response) -> None:
    if not response.is_error:
        return
    error: dict[str, Any]
    try:
        body = response.json()
        error = body["error"] if isinstance(body, dict) and isinstance(body.get("error"), dict) else {}
    except ValueError:
        error = {}
    if not error.get("message"):
        text = response.text.strip()[:300]
        status = f"HTTP {response.status_code} {response.reason_phrase}"
        error = {**error, "message": f"{status}: {text}" if text else status}
    raise ApiError(response.status_code, str(response.request.url), error)


def _clean(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Drop unset query parameters so the server's defaults apply."""
    if params is None:
        return None
    return {key: value for key, value in params.items() if value is not None}
