"""The HTTP client of webhook delivery: ``http.client`` with short timeouts, no redirects followed (a 3xx is
a failed attempt), connections pinned to the checked address and kept alive per endpoint within one pass.

Outcomes are short codes (``http_503``, ``timeout``, ``connection_refused``...): response bodies are read
and thrown away, never stored or logged.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from dataclasses import dataclass
from typing import Any

from webhooks.url_safety import Target

MAX_RESPONSE_BYTES = 64 * 1024


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status: int | None
    error: str  # "" when ok


def _pinned(address: str, port: int) -> Any:
    def create_connection(_addr: Any, timeout: Any = None, source_address: Any = None) -> socket.socket:
        sock = socket.create_connection((address, port), timeout, source_address)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # small requests: no Nagle delay
        return sock

    return create_connection


_TLS: ssl.SSLContext | None = None


def _tls() -> ssl.SSLContext:
    """One verifying TLS context per process (loading the CA store costs tens of milliseconds)."""
    global _TLS
    if _TLS is None:
        _TLS = ssl.create_default_context()
    return _TLS


class Pool:
    """Keep-alive connections per (scheme, host, port, address) for one delivery pass."""

    def __init__(self, *, timeout: float) -> None:
        self.timeout = timeout
        self._conns: dict[tuple[str, str, int, str], http.client.HTTPConnection] = {}

    def _connection(self, target: Target) -> http.client.HTTPConnection:
        key = (target.scheme, target.host, target.port, target.address)
        conn = self._conns.get(key)
        if conn is None:
            if target.scheme == "https":
                conn = http.client.HTTPSConnection(target.host, target.port, timeout=self.timeout, context=_tls())
            else:
                conn = http.client.HTTPConnection(target.host, target.port, timeout=self.timeout)
            conn._create_connection = _pinned(target.address, target.port)  # type: ignore[attr-defined]
            self._conns[key] = conn
        return conn

    def _drop(self, target: Target) -> None:
        conn = self._conns.pop((target.scheme, target.host, target.port, target.address), None)
        if conn is not None:
            conn.close()

    def post(self, target: Target, *, body: bytes, headers: dict[str, str]) -> Outcome:
        all_headers = {"Content-Type": "application/json", "User-Agent": "privacy-scoring-webhooks/1",
                       "Content-Length": str(len(body)), **headers}
        for attempt in (1, 2):  # a kept-alive connection the server closed meanwhile: one fresh try
            conn = self._connection(target)
            try:
                conn.request("POST", target.path, body=body, headers=all_headers)
                response = conn.getresponse()
                response.read(MAX_RESPONSE_BYTES)
                status = response.status
                if response.will_close or not response.isclosed():  # body longer than we read
                    self._drop(target)
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self._drop(target)
                if attempt == 2:
                    return Outcome(False, None, _code(exc))
            except (OSError, http.client.HTTPException) as exc:
                self._drop(target)
                return Outcome(False, None, _code(exc))
        if 200 <= status < 300:
            return Outcome(True, status, "")
        if 300 <= status < 400:
            return Outcome(False, status, f"redirect_{status}")
        return Outcome(False, status, f"http_{status}")

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()


def _code(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "connection_refused"
    if isinstance(exc, ConnectionResetError | http.client.RemoteDisconnected | BrokenPipeError):
        return "connection_reset"
    if isinstance(exc, ssl.SSLError):
        return "tls_error"
    if isinstance(exc, http.client.HTTPException):
        return "bad_response"
    return "network_error"
