"""Which webhook URLs may be registered and called.

Production (``WEBHOOK_ALLOW_HTTP = False``, the production settings force it) accepts only ``https`` URLs.
Every address the host resolves to must be public: private, loopback, link-local, multicast, reserved and
unspecified addresses are refused unless the host is listed in ``WEBHOOK_ALLOWED_PRIVATE_HOSTS``. The check
runs at registration (where a host that does not resolve yet is accepted: DNS is the environment's, and a
schema cannot state it) and again before every connection (where it must resolve, else the attempt fails and
is retried), and the connection goes to the address that was
checked (no second DNS lookup between check and connect: no DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from config.errors import ValidationFailed

MAX_URL_LENGTH = 2000


class UnsafeUrl(ValidationFailed):
    """A URL refused by the rules above (400, ``code`` names the rule)."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # path and query, as sent in the request line
    address: str  # the checked IP address to connect to


def _refuse(code: str, detail: str) -> UnsafeUrl:
    return UnsafeUrl(detail, code=code, extra={"errors": {"url": [{"code": code}]}})


def _private_allowed(host: str) -> bool:
    allowed = {h.strip().lower() for h in getattr(settings, "WEBHOOK_ALLOWED_PRIVATE_HOSTS", []) if h.strip()}
    return host.lower() in allowed


def _address_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved
                or ip.is_unspecified or not ip.is_global)


def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def url_check(url: object, *, must_resolve: bool = True) -> Target:
    """Parse, resolve and check ``url``; a ``Target`` to connect to, or ``UnsafeUrl`` (400) saying why.

    ``must_resolve=False`` (registration): a host that does not resolve (yet, or in this network) is accepted
    with an empty ``address``; every address it does resolve to must still pass the rules. The check before
    each delivery always resolves, so nothing is ever sent to an address that was not checked."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise _refuse("invalid_url", f"Give an absolute URL of at most {MAX_URL_LENGTH} characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _refuse("invalid_url", "The URL cannot be parsed.") from None
    scheme = parts.scheme.lower()
    allow_http = bool(getattr(settings, "WEBHOOK_ALLOW_HTTP", False))
    if scheme != "https" and not (allow_http and scheme == "http"):
        raise _refuse("https_required", "Webhook URLs must use https.")
    if parts.username is not None or parts.password is not None:
        raise _refuse("credentials_in_url", "Webhook URLs may not carry credentials; the signature authenticates.")
    if parts.fragment:
        raise _refuse("invalid_url", "Webhook URLs may not have a fragment.")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise _refuse("invalid_url", "The URL has no host.")
    port = port or (443 if scheme == "https" else 80)
    addresses = _resolve(host, port)
    if not addresses and must_resolve:
        raise _refuse("unresolvable_host", "The URL's host does not resolve.")
    if not _private_allowed(host) and not all(_address_public(a) for a in addresses):
        raise _refuse("private_address",
                      "The URL's host resolves to a private, loopback or link-local address; list the host in "
                      "WEBHOOK_ALLOWED_PRIVATE_HOSTS to allow it.")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(scheme=scheme, host=host, port=port, path=path, address=addresses[0] if addresses else "")
