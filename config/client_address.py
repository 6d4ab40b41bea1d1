"""The client's address, read through a configured list of trusted reverse proxies only.

``REMOTE_ADDR`` is the peer of this process. When that peer is one of ``TRUSTED_PROXIES`` (addresses or
networks, e.g. ``10.0.0.0/8,127.0.0.1``), the client is the right-most address of ``X-Forwarded-For`` that is
not itself a trusted proxy; a header sent by anyone else is ignored (it could be forged). So behind a proxy
every client has its own bucket in per-address limits (one-time codes, anonymous throttles, login lockouts),
and without one nobody can pick their own bucket.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry.strip())


def _parse(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def _trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address, networks: tuple[Network, ...]) -> bool:
    return any(address in network for network in networks)


def client_address(request: HttpRequest) -> str:
    peer = request.META.get("REMOTE_ADDR", "") or ""
    networks = _networks(tuple(getattr(settings, "TRUSTED_PROXIES", ()) or ()))
    peer_address = _parse(peer)
    if not networks or peer_address is None or not _trusted(peer_address, networks):
        return peer
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    for hop in reversed([part for part in forwarded.split(",") if part.strip()]):
        address = _parse(hop)
        if address is None:  # garbage from beyond the trusted chain: stop at the last proxy we trust
            return peer
        if not _trusted(address, networks):
            return str(address)
        peer = str(address)
    return peer
