"""Where the stack listens, and the address other machines are told to use.

By default everything listens on 127.0.0.1. A run across machines binds the
Locust master and the target service to another address (`harness run
--master-bind-host`), and the load generators, remote workers included, are
given the *advertised* address in the target's URL: a worker told 127.0.0.1
would send its requests to its own loopback. The harness's own traffic
(readiness checks, metric scrapes) uses the *local* address, which always
answers on this machine.

The choices are pure (`check_bind_host`, `check_advertise_host`, `local_host`,
`advertised_host`, which takes the discovery as an argument); `primary_ipv4`
and `check_listenable` are the only functions that touch the network stack,
and neither sends a packet.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable

from harness.errors import UsageError

LOOPBACK = "127.0.0.1"
ANY = "0.0.0.0"
_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
_PROBE = ("192.0.2.1", 9)
"""A documentation address (RFC 5737): connecting a UDP socket to it only asks the kernel
which source address its route would use; nothing is sent."""


_BROADCAST = ipaddress.IPv4Address("255.255.255.255")


def _ipv4(text: str) -> ipaddress.IPv4Address | None:
    try:
        return ipaddress.IPv4Address(text)
    except ValueError:
        return None


def check_bind_host(host: str) -> None:
    """A `UsageError` unless `host` is an IPv4 address a socket can be bound to: a literal
    (so the URLs built from it need no resolving), neither multicast nor broadcast."""
    ip = _ipv4(host)
    if ip is None or ip.is_multicast or ip == _BROADCAST:
        raise UsageError(f"--master-bind-host must be an IPv4 address of this machine, "
                         f"e.g. 0.0.0.0 (every interface) or 10.0.0.5, not {host!r}")


def check_connect_host(host: str, flag: str) -> None:
    """A `UsageError` unless a socket could connect to `host`: an IPv4 address or a DNS
    name, without a port, and not 0.0.0.0 (where a server listens, not an address)."""
    ip = _ipv4(host)
    if ip is None:
        if ":" in host:
            raise UsageError(f"{flag} {host!r}: give the address alone (IPv4 or a DNS name), "
                             "without a port and not IPv6")
        labels = host.rstrip(".").split(".")
        if not _HOSTNAME.fullmatch(host) or all(label.isdigit() for label in labels):
            raise UsageError(f"{flag} {host!r} is neither an IPv4 address nor a DNS name")
    elif ip.is_unspecified or ip.is_multicast or ip == _BROADCAST:
        raise UsageError(f"{flag} {host!r} is not an address a machine can connect to; give "
                         "the machine's own address, e.g. 10.0.0.5")


def check_advertise_host(host: str, bind_host: str) -> None:
    """A `UsageError` unless other machines could connect to `host`; and as the target
    must listen beyond loopback for them to reach it, only the loopback address it is
    bound to may be advertised with a loopback bind host."""
    check_connect_host(host, "--advertise-host")
    bind = _ipv4(bind_host)
    if bind is not None and bind.is_loopback and host != bind_host:
        raise UsageError(f"--advertise-host {host!r}: the master and the target listen on "
                         f"{bind_host} only, which no other machine can reach; add "
                         "--master-bind-host 0.0.0.0 (or this machine's address)")


def local_host(bind_host: str) -> str:
    """Where this machine reaches a socket bound to `bind_host`: 127.0.0.1 for every
    interface, else the address itself (a socket on 10.0.0.5 does not answer 127.0.0.1)."""
    return LOOPBACK if bind_host == ANY else bind_host


def advertised_host(bind_host: str, advertise_host: str | None,
                    discover: Callable[[], str | None]) -> str:
    """The address other machines use: the one given, else a concrete bind address, else
    (0.0.0.0) the one `discover` finds; a `UsageError` when it finds none."""
    if advertise_host:
        return advertise_host
    if bind_host != ANY:
        return bind_host
    found = discover()
    if not found:
        raise UsageError("--master-bind-host 0.0.0.0: this machine has no non-loopback IPv4 "
                         "address for other machines to use; give one with --advertise-host")
    return found


def primary_ipv4() -> str | None:
    """This machine's primary non-loopback IPv4 address: the source address of its route
    towards the outside, else what its hostname resolves to; None when both are loopback
    or fail (no network)."""
    candidates: list[str] = []
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(_PROBE)
            candidates.append(s.getsockname()[0])
    except OSError:
        pass
    try:
        candidates.append(socket.gethostbyname(socket.gethostname()))
    except OSError:
        pass
    for candidate in candidates:
        ip = _ipv4(candidate)
        if ip is not None and not (ip.is_loopback or ip.is_unspecified or ip.is_link_local):
            return candidate
    return None


def check_listenable(host: str) -> None:
    """A `UsageError` when no socket can listen on `host` (not an address of this
    machine), said before anything starts rather than as a component's failure."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, 0))
        except OSError as exc:
            raise UsageError(f"cannot listen on {host}: {exc.strerror or exc} (is it an "
                             "address of this machine?)") from exc
