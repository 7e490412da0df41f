"""Vetting addresses, without touching the network (`check_url`) and at connect time
(`vetted_addresses`): which schemes, ports, hosts and IP addresses a crawler may reach."""

import ipaddress
import socket
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from urllib.parse import urlsplit

from django.conf import settings

from .errors import FetchError

STANDARD_PORTS = (80, 443)
NAT64_NETWORKS = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


def host_is_allowed(host: str) -> bool:
    return host.lower().strip("[]").rstrip(".") in {h.lower() for h in settings.TWIN_CRAWL_ALLOWED_HOSTS}


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries, in any of the forms routers translate."""
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip.sixtofour:
        return ip.sixtofour
    if ip.teredo:
        return ip.teredo[1]
    if any(ip in network for network in NAT64_NETWORKS):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if int(ip) >> 32 == 0 and int(ip) > 1:  # deprecated IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(int(ip))
    return None


def address_refusal(address: str) -> str | None:
    """Why a crawler may not connect to this address, or None when it may."""
    ip = ipaddress.ip_address(address.split("%")[0])
    candidates = [ip]
    if isinstance(ip, ipaddress.IPv6Address) and (inner := embedded_ipv4(ip)):
        candidates.insert(0, inner)
    for candidate in candidates:
        if candidate.is_loopback:
            return "a loopback address"
        if candidate.is_link_local:
            return "a link-local address (cloud metadata lives there)"
        if candidate.is_unspecified:
            return "a reserved address"
        if candidate.is_private:
            return "a private network address"
        if candidate.is_multicast or candidate.is_reserved or candidate.is_unspecified or not candidate.is_global:
            return "a reserved address"
    return None


def _literal_address(host: str) -> str | None:
    """The address a host name spells itself, in any form a resolver would accept."""
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        pass
    if host.replace(".", "").replace("x", "").replace("X", "").isalnum() and host[:1].isdigit():
        try:  # legacy forms getaddrinfo accepts: 2130706433, 0x7f.1, 0177.0.0.1, 127.1
            return socket.inet_ntoa(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _port_of(parts) -> int:
    try:
        port = parts.port
    except ValueError:
        raise FetchError("That address has an invalid port: ports run from 1 to 65535.") from None
    if port == 0:
        raise FetchError("That address has an invalid port: ports run from 1 to 65535.")
    return port or (443 if parts.scheme == "https" else 80)


def port_refusal(port: int) -> str | None:
    """Why a crawler may not connect to this port, or None. Allow-listed hosts too: with
    loopback allowed, the app's own port (and Redis's) would be open to any tenant."""
    allowed_ports = (*STANDARD_PORTS, *settings.TWIN_CRAWL_ALLOWED_PORTS)
    if port in allowed_ports:
        return None
    return f"Refused: port {port} (only {', '.join(map(str, allowed_ports))} can be crawled)."


def check_url(url: str) -> str:
    """Validate a user-given URL without touching the network; return it normalised or raise FetchError.

    Names are resolved (with a timeout) only when a crawl connects, never in a web request.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise FetchError("Only http:// and https:// addresses can be crawled.")
    if not parts.hostname:
        raise FetchError("That address has no host name.")
    if parts.username or parts.password:
        raise FetchError("Addresses with a user name or password are not accepted.")
    if refusal := port_refusal(_port_of(parts)):
        raise FetchError(refusal)
    if not host_is_allowed(parts.hostname):
        literal = _literal_address(parts.hostname)
        if literal and (refusal := address_refusal(literal)):
            raise FetchError(f"Refused: {parts.hostname} is {refusal}.")
    return parts.geturl()


_resolver_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="twinsite-dns")


def resolve(host: str, port: int) -> list[tuple]:
    """getaddrinfo with a deadline (it has none of its own), as (family, sockaddr) pairs."""
    future = _resolver_pool.submit(socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        infos = future.result(timeout=settings.TWIN_DNS_TIMEOUT)
    except FutureTimeout:
        raise FetchError(f"Looking up {host} took longer than {settings.TWIN_DNS_TIMEOUT} seconds.") from None
    except (socket.gaierror, UnicodeError):
        raise FetchError(f"The host {host} could not be found.") from None
    return [(info[0], info[4]) for info in infos]


def vetted_addresses(host: str, port: int) -> list[tuple]:
    """Resolve and refuse the lot if any address is internal (a mixed answer is a trick)."""
    addresses = resolve(host, port)
    if not host_is_allowed(host):
        for _, sockaddr in addresses:
            if refusal := address_refusal(sockaddr[0]):
                raise FetchError(f"Refused: {host} resolves to {refusal}.")
    return addresses
