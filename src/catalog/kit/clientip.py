"""The client's IP address, believing `X-Forwarded-For` only from trusted proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.types import Scope

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Iterable[str]) -> list[Network]:
    return [ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip()]


def _trusted(address: str, networks: list[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_ip(scope: Scope, trusted: list[Network]) -> str:
    """The peer address; behind trusted proxies, the right-most untrusted forwarded address."""
    client = scope.get("client")
    peer = client[0] if client else "unknown"
    if not trusted or not _trusted(peer, trusted):
        return peer
    forwarded: list[str] = []
    for name, value in scope.get("headers", []):
        if name == b"x-forwarded-for":
            forwarded += [p.strip() for p in value.decode("latin-1").split(",") if p.strip()]
    for address in reversed(forwarded):
        if not _trusted(address, trusted):
            try:
                return str(ipaddress.ip_address(address))
            except ValueError:
                return peer
    return forwarded[0] if forwarded else peer


def forwarded_proto(scope: Scope, trusted: list[Network]) -> str | None:
    """`X-Forwarded-Proto` when the peer is a trusted proxy, else None."""
    client = scope.get("client")
    if not trusted or not client or not _trusted(client[0], trusted):
        return None
    for name, value in scope.get("headers", []):
        if name == b"x-forwarded-proto":
            return str(value.decode("latin-1")).split(",")[0].strip().lower()
    return None
