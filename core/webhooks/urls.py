"""Which URLs a webhook may call: http(s) to public addresses, by default.

A server that calls URLs its users give can be turned against its own network (SSRF): the
cloud metadata service (169.254.169.254), localhost admin ports, the database. Every address
the host name resolves to must be global; LATHE_ALLOW_PRIVATE_URLS lets loopback and
private ranges through (tests, a receiver beside a self-hosted Lathe), never link-local.
Checked at registration and again before every attempt (DNS may have changed); redirects are
not followed, so a public URL cannot bounce a delivery inward.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from core.errors import InvalidRequest


class UrlRefused(Exception):
    pass


def _addresses(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UrlRefused(f"{host} does not resolve") from exc
    return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]


def check(url: str, allow_private: bool) -> None:
    """Raise UrlRefused saying why `url` may not be called."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UrlRefused("must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise UrlRefused("must not carry credentials")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UrlRefused("has an invalid port") from exc
    for address in _addresses(parts.hostname, port):
        if address.is_link_local or address.is_multicast or address.is_unspecified:
            raise UrlRefused(f"resolves to {address}, which is never allowed")
        if not address.is_global and not allow_private:
            raise UrlRefused(
                f"resolves to the non-public address {address} (LATHE_ALLOW_PRIVATE_URLS allows it)"
            )


def check_param(url: str, allow_private: bool, param: str = "url") -> None:
    """`check`, as the 400 a client gets for the field."""
    try:
        check(url, allow_private)
    except UrlRefused as exc:
        raise InvalidRequest(f"{url!r} {exc}", param=param, code="invalid_url") from exc
