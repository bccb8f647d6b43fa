"""One address policy for every outbound connection Ferry makes to an address a user typed
(git remotes today, notification endpoints later).

A URL can name any host and port; without a policy, "fetch this repository" becomes "probe
Ferry's internal network". So a destination is resolved, and refused when any of its
addresses is loopback, private, link-local, unspecified, multicast or otherwise not globally
routable, unless the configuration allows it (`outbound_allow_private`, or a network listed
in `outbound_allow_cidrs`). The check runs when a URL is saved and again right before each
connection, because DNS answers change; callers then connect to the address that was checked.

May import: settings, errors. Never raises anything but OutboundRefused for a refusal.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

from services.errors import FerryError
from services.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class OutboundRefused(FerryError):
    """The destination is not one Ferry may connect to; the message says which rule."""


@dataclass(frozen=True)
class AddressPolicy:
    """Which addresses outbound connections may reach."""

    allow_private: bool = False
    allow_networks: tuple[IPNetwork, ...] = ()
    resolve_timeout_s: float = 5.0

    @classmethod
    def from_settings(cls, settings: Settings) -> AddressPolicy:
        networks = tuple(ipaddress.ip_network(cidr, strict=False)
                         for cidr in settings.outbound_allow_cidrs)
        return cls(settings.outbound_allow_private, networks,
                   settings.outbound_resolve_timeout_s)

    def refusal(self, address: str | IPAddress) -> str | None:
        """Why `address` is refused ("loopback", "private", ...), or None when allowed."""
        ip = ipaddress.ip_address(address)
        if isinstance(ip, ipaddress.IPv6Address):
            embedded = ip.ipv4_mapped or ip.sixtofour
            if embedded is not None:        # ::ffff:127.0.0.1 is 127.0.0.1
                return self.refusal(embedded)
        if any(ip in network for network in self.allow_networks):
            return None
        if ip.is_unspecified:
            return "unspecified"
        if ip.is_multicast:
            return "multicast"
        if self.allow_private:
            return None
        if ip.is_loopback:
            return "loopback"
        if ip.is_link_local:
            return "link-local"
        if ip.is_private:
            return "private"
        if ip.is_reserved or not ip.is_global:
            return "reserved"
        return None

    def check_address(self, address: str | IPAddress, host: str) -> None:
        """Raise OutboundRefused when `address` (what `host` resolved to) is refused."""
        reason = self.refusal(address)
        if reason:
            raise OutboundRefused(
                f"{host} is a {reason} address ({address}), which this server does not "
                "connect to (settings: outbound_allow_private, outbound_allow_cidrs)")

    async def resolve(self, host: str, port: int) -> list[str]:
        """Every address `host` resolves to, all allowed (else OutboundRefused). An empty
        list means the name does not resolve (the caller decides what that means)."""
        literal = _literal(host)
        if literal is not None:
            self.check_address(literal, host)
            return [str(literal)]
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), self.resolve_timeout_s)
        except (OSError, TimeoutError, UnicodeError):
            return []
        addresses = list(dict.fromkeys(info[4][0] for info in infos))
        for address in addresses:
            self.check_address(address.split("%", 1)[0], host)
        return addresses


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
    except ValueError:
        return None
