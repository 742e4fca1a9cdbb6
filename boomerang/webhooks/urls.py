"""Where a webhook may go: never to an internal address, checked twice.

    policy = WebhookUrlPolicy.from_settings(settings)   # strict unless told otherwise
    check_webhook_url(url, policy)                       # when a URL is given: raises WebhookUrlRefused
    addresses = await resolve_checked(host, policy)      # when it is delivered: every address checked

A URL is refused when its host is an internal address written any way an HTTP
client would accept it (`127.1`, `2130706433`, `0x7f.1`, `0177.0.0.1`,
`[::ffff:127.0.0.1]`), a name that means this machine (`localhost`, `*.localhost`),
or, at delivery, a name that resolves to one. Internal means loopback, private
(RFC 1918, ULA), link-local (cloud metadata at 169.254.169.254 included),
unspecified (`0.0.0.0`), shared, reserved, multicast and documentation ranges:
anything that is not globally routable. `https` is required unless the policy
says otherwise. The allow-list (`BOOMERANG_WEBHOOK_ALLOW_HOSTS`: names, addresses
or networks) is for local development: `boomerang dev` and the tests list the
loopback addresses explicitly, production lists nothing.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Self
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict

from boomerang.errors import BoomerangError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class WebhookUrlRefused(BoomerangError, ValueError):  # reads as what happened
    """A webhook URL that may not be used; the message says why, `field` names the input."""

    def __init__(self, message: str, *, field: str = "webhook_url") -> None:
        super().__init__(message)
        self.field = field


class WebhookUrlPolicy(BaseModel):
    """Which webhook URLs are allowed; the default is production's: https, public addresses."""

    model_config = ConfigDict(frozen=True)

    # Names, addresses or networks (CIDR) exempt from the internal-address check.
    allow_hosts: tuple[str, ...] = ()
    require_https: bool = True

    @classmethod
    def from_settings(cls, settings: object) -> Self:
        return cls(
            allow_hosts=split_hosts(getattr(settings, "webhook_allow_hosts", "")),
            require_https=bool(getattr(settings, "webhook_require_https", True)),
        )

    @classmethod
    def loopback(cls) -> Self:
        """Local development and tests: loopback endpoints over plain http."""
        return cls(allow_hosts=LOOPBACK_HOSTS, require_https=False)

    def allows_name(self, host: str) -> bool:
        return _norm(host) in {_norm(h) for h in self.allow_hosts if _network(h) is None}

    def allows_address(self, address: IPAddress) -> bool:
        for entry in self.allow_hosts:
            net = _network(entry)
            if net is not None and address.version == net.version and address in net:
                return True
        return False


def _norm(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def _network(entry: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(_norm(entry), strict=False)
    except ValueError:
        return None


def parse_ip(host: str) -> IPAddress | None:
    """The address a host string denotes, in every notation `inet_aton` accepts; None for a name."""
    text = _norm(host)
    try:
        return _unmapped(ipaddress.ip_address(text))
    except ValueError:
        pass
    if "%" in text:  # an IPv6 zone: link-local by definition
        return ipaddress.IPv6Address("fe80::1")
    try:
        # Integer, octal, hex and short forms (2130706433, 0177.1, 0x7f.0.0.1, 127.1).
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except (OSError, UnicodeEncodeError):
        return None


def _unmapped(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address.teredo is not None:
            return address.teredo[1]
        if address in ipaddress.IPv6Network("64:ff9b::/96"):  # NAT64 embeds an IPv4 address
            return ipaddress.IPv4Address(address.packed[-4:])
    return address


def internal_reason(address: IPAddress) -> str | None:
    """Why this address is not a public one, or None when it is."""
    address = _unmapped(address)
    for test, what in (
        (address.is_loopback, "loopback"),
        (address.is_unspecified, "unspecified"),
        (address.is_link_local, "link-local (cloud metadata lives here)"),
        (address.is_private, "private"),
        (address.is_multicast, "multicast"),
        (address.is_reserved, "reserved"),
        (not address.is_global, "not globally routable"),
    ):
        if test:
            return what
    return None


def check_webhook_url(url: str, policy: WebhookUrlPolicy, *, field: str = "webhook_url") -> httpx.URL:
    """The parsed URL when it may be used; raises `WebhookUrlRefused` naming the problem."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        host = urlsplit(str(url)).hostname or ""
        address = parse_ip(host)
        reason = internal_reason(address) if address is not None else None
        if reason is not None:  # e.g. 0177.0.0.1, which httpx declines to parse
            raise WebhookUrlRefused(
                _refusal(field, host, f"{reason} address {address}"), field=field
            ) from None
        raise WebhookUrlRefused(f"{field}: not a URL ({exc})", field=field) from None
    host = parsed.host
    if parsed.scheme not in ("http", "https") or not host:
        raise WebhookUrlRefused(f"{field}: must be an http(s) URL with a host", field=field)
    if policy.allows_name(host):
        return parsed
    name = _norm(host)
    if name in _LOCAL_NAMES or name.endswith(".localhost"):
        raise WebhookUrlRefused(_refusal(field, host, "this machine"), field=field)
    address = parse_ip(host)
    if address is not None and not policy.allows_address(address):
        reason = internal_reason(address)
        if reason is not None:
            raise WebhookUrlRefused(_refusal(field, host, f"{reason} address {address}"), field=field)
    if policy.require_https and parsed.scheme != "https":
        raise WebhookUrlRefused(
            f"{field}: must use https (BOOMERANG_WEBHOOK_REQUIRE_HTTPS=false allows http for development)",
            field=field,
        )
    return parsed


def _refusal(field: str, host: str, what: str) -> str:
    return (
        f"{field}: {host!r} is {what}; webhooks go to public addresses only "
        "(BOOMERANG_WEBHOOK_ALLOW_HOSTS lists exceptions for local development)"
    )


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for `host` (A and AAAA)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def resolve_checked(host: str, port: int, policy: WebhookUrlPolicy, resolver: Resolver) -> list[str]:
    """The addresses to connect to: all of them checked; raises `WebhookUrlRefused` if any is internal.

    One bad address refuses the lot: a name that answers both a public and an
    internal address is exactly what a rebinding attack looks like.
    """
    literal = parse_ip(host)
    answers = [str(literal)] if literal is not None else await resolver(host, port)
    if not answers:
        raise WebhookUrlRefused(f"webhook_url: {host!r} resolves to no address")
    checked: list[str] = []
    for answer in answers:
        address = parse_ip(answer)
        if address is None:
            raise WebhookUrlRefused(f"webhook_url: {host!r} resolved to {answer!r}, not an address")
        reason = None if policy.allows_address(address) else internal_reason(address)
        if reason is not None:
            raise WebhookUrlRefused(_refusal("webhook_url", host, f"resolved to {reason} address {address}"))
        checked.append(str(address))
    return list(dict.fromkeys(checked))


def split_hosts(value: str | Iterable[str]) -> tuple[str, ...]:
    """`BOOMERANG_WEBHOOK_ALLOW_HOSTS` as comma-separated text or a JSON list."""
    items = value.split(",") if isinstance(value, str) else value
    return tuple(s.strip() for s in items if s.strip())
