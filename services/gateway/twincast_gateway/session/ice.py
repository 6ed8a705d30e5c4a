"""ICE configuration for aiortc peers: servers from settings, host addresses, no mDNS."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer

from twincast_gateway.settings import IceServer

_auto_addresses = aioice.ice.get_host_addresses


def configure_ice(*, addresses: Sequence[str], mdns: bool) -> None:
    """Process-wide, because aioice reads both from module functions at gathering time.

    aioice never offers loopback; with `addresses` empty it offers every other interface
    and falls back to loopback on a host that has nothing else (a private network namespace).
    """
    fixed = list(addresses)

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        if fixed:
            return [a for a in fixed if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]
        found = _auto_addresses(use_ipv4, use_ipv6)
        return found or (["127.0.0.1"] if use_ipv4 else [])

    aioice.ice.get_host_addresses = host_addresses
    if not mdns:
        aioice.ice.get_or_create_mdns_protocol = _no_mdns


async def _no_mdns(subscriber: object) -> Any:
    raise OSError("mDNS candidate resolution is off (TWINCAST_ICE_MDNS)")


def rtc_configuration(servers: Sequence[IceServer]) -> RTCConfiguration:
    return RTCConfiguration(
        iceServers=[
            RTCIceServer(urls=s.urls, username=s.username, credential=s.credential) for s in servers
        ]
    )
