"""Outbound HTTP: every call the gateway makes to an EHR, an OAuth server or a key set, under one
policy. Tenants type these URLs, so a call must not become a way into the gateway's own network.

- https only; plain http only when the deployment allows insecure HTTP (local testing).
- No cookies: a Set-Cookie in one call's answer is not kept for any later call.
- Connect and read timeouts, at most a few redirects, and a cap on the response size.
- No loopback, link-local, private or otherwise non-public addresses, unless the deployment
  allows private outbound calls (tests do). The check is made on the addresses the name resolves
  to, and the connection goes to the checked address, so a name that re-resolves elsewhere
  between the check and the call (DNS rebinding) gains nothing. Every redirect hop is a new
  request and is checked again.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from http.cookiejar import Cookie, CookieJar
from typing import Any

import httpcore
import httpx

from ehr_gateway.runtime.json_limits import loads_bounded
from ehr_gateway.storage.client import not_counted_against_deadline

MAX_REDIRECTS = 3
MAX_RESPONSE_BYTES = 1_000_000
# httpx's timeouts bound each connect and each read, not the whole call: a server that sends a
# byte every few seconds would hold a call (and its socket) for weeks. The whole call, redirects
# included, gets this many times the timeout.
DEADLINE_TIMEOUTS = MAX_REDIRECTS + 1


@dataclass(frozen=True, slots=True)
class OutboundPolicy:
    allow_insecure_http: bool = False
    allow_private: bool = False
    timeout_s: float = 5.0
    max_response_bytes: int = MAX_RESPONSE_BYTES


# Failures that mean the server did answer, just not acceptably.
_ANSWERED = frozenset(
    {
        "HTTP_STATUS",
        "NOT_JSON",
        "RESPONSE_TOO_LARGE",
        "TOO_MANY_REDIRECTS",
        "INSECURE_REDIRECT",
        "REDIRECT_REFUSED",
    }
)


class OutboundRefused(Exception):
    """The call was not made, or its answer not accepted; ``code`` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def answered(self) -> bool:
        """Whether a server answered (the host is reachable)."""
        return self.code in _ANSWERED


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: the IPv4 address is the last 32 bits
# RFC 8215 local-use NAT64: the operator's own translator, with the IPv4 address at a position
# that depends on a prefix length we cannot know. Never a public destination.
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")
# RFC 2765 (SIIT) IPv4-translated ::ffff:0:a.b.c.d: a stateless translator delivers it to
# a.b.c.d. The stdlib knows the IPv4-mapped ::ffff:a.b.c.d, not this one.
_IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")
# RFC 5214 ISATAP: an interface identifier 0000:5efe:a.b.c.d (0200:5efe: with the u/l bit) under
# any /64. A host on that ISATAP prefix sends the packet over IPv4 to a.b.c.d, its own site's
# address; the prefix alone says nothing about where that is.
_ISATAP_IID = 0x00005EFE
_ISATAP_IID_MASK = 0xFDFFFFFF  # ignores the u/l bit


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address leads to: a packet to it reaches them (through the
    host's own stack, a NAT64 or SIIT translator, a 6to4 or a Teredo relay, an ISATAP tunnel)."""
    found: list[ipaddress.IPv4Address] = []
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if int(ip) >> 32 == 0:  # IPv4-compatible ::a.b.c.d (deprecated, still routed by some stacks)
        found.append(low32)
    if ip in _NAT64 or ip in _IPV4_TRANSLATED:
        found.append(low32)
    if (int(ip) >> 32) & _ISATAP_IID_MASK == _ISATAP_IID:
        found.append(low32)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)  # the relay server and the client behind it
    return found


def _public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    # Multicast: no TCP server is there, yet the stdlib calls 224.0.0.0/4 and ff0e::/16 global.
    return ip.is_global and not ip.is_multicast


def public_address(address: str) -> bool:
    """Whether ``address`` and every IPv4 address it embeds are globally routable."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        # Site-local fec0::/10: deprecated (RFC 3879), the stdlib calls it global, but it was
        # IPv6's RFC 1918 and some networks still route it inside.
        if ip in _LOCAL_NAT64 or ip.is_site_local:
            return False
        embedded = _embedded_ipv4(ip)
        if ip.ipv4_mapped is not None:
            return _public(embedded[0])  # an IPv4 address in IPv6 form
        if not all(_public(v4) for v4 in embedded):
            return False
    return _public(ip)


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves the host itself, refuses non-public addresses, and connects to the address it
    checked (TLS still verifies the certificate against the host name)."""

    def __init__(self, allow_private: bool) -> None:
        self._allow_private = allow_private
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except (socket.gaierror, UnicodeError):  # UnicodeError: a label the resolver refuses
            raise httpcore.ConnectError(f"cannot resolve {host}") from None
        addresses = [str(info[4][0]) for info in infos]
        if not self._allow_private:
            addresses = [address for address in addresses if public_address(address)]
            if not addresses:
                raise httpcore.ConnectError("private-address")
        return await self._inner.connect_tcp(
            addresses[0], port, timeout=timeout, local_address=local_address,
            socket_options=socket_options,
        )  # fmt: skip

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


@dataclass(frozen=True, slots=True)
class Outbound:
    """The client every outbound call goes through, and the policy it was built with."""

    client: httpx.AsyncClient
    policy: OutboundPolicy

    @classmethod
    def open(cls, policy: OutboundPolicy) -> Outbound:
        return cls(outbound_client(policy), policy)

    async def get_json(self, url: str, *, follow_redirects: bool = True) -> Any:
        # Bounded by the outbound timeout, not by the request's database deadline.
        with not_counted_against_deadline():
            return await fetch_json(
                self.client, self.policy, url, follow_redirects=follow_redirects
            )

    async def post_form(self, url: str, form: dict[str, str]) -> tuple[int, Any]:
        """POST a form; the status and the JSON body, whatever the status (OAuth errors come as
        JSON bodies of 400 and 401 answers), or None when the body is not JSON."""
        with not_counted_against_deadline():
            status, body = await exchange(
                self.client, self.policy, "POST", url, data=form,
                headers={"accept": "application/json"}, follow_redirects=False,
            )  # fmt: skip
        try:
            return status, parse_json(body)
        except OutboundRefused:
            return status, None


class NoCookies(CookieJar):
    """A cookie jar that keeps nothing. The client is shared by every tenant's calls: a cookie
    one EHR, token endpoint or key server sets in its answer to one call (a session, a load
    balancer's stickiness) would otherwise go out on every later call to that host, whichever
    tenant makes it. No call the gateway makes needs a cookie, so none is kept."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        pass  # not even parsed: nothing of an answer is kept

    def set_cookie(self, cookie: Cookie) -> None:
        pass


@functools.cache
def _trust() -> ssl.SSLContext:
    # Loading the trust store takes tens of milliseconds: once per process, not per client.
    return httpx.create_ssl_context()


def outbound_client(policy: OutboundPolicy) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(verify=_trust(), retries=0)
    # httpx has no public way to choose the network backend; its pool takes one.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=_trust(), network_backend=_GuardedBackend(policy.allow_private), retries=0
    )
    return httpx.AsyncClient(
        transport=transport,
        # Environment proxies would carry the call past the address check (the check would see
        # the proxy, not the target), and .netrc credentials have no business here.
        trust_env=False,
        timeout=httpx.Timeout(policy.timeout_s),
        # Redirects are followed by exchange, which checks each hop before requesting it.
        follow_redirects=False,
        headers={"user-agent": "ehr-gateway"},
        cookies=NoCookies(),
    )


async def exchange(
    client: httpx.AsyncClient,
    policy: OutboundPolicy,
    method: str,
    url: str,
    *,
    follow_redirects: bool = True,
    **request: Any,
) -> tuple[int, bytes]:
    """Make one request under ``policy``; its status and body. Raises OutboundRefused.

    Redirects are followed here, hop by hop, so that each hop's URL is checked before it is
    requested (its address is checked by the network backend before anything is sent): httpx
    would send the request first and leave only its history to look at. Without
    ``follow_redirects`` a redirect is refused: a POST carries a credential (a signed client
    assertion) that must reach the URL it was signed for and no other."""
    try:
        next_request: httpx.Request | None = client.build_request(method, url, **request)
    except (httpx.InvalidURL, UnicodeError):
        raise OutboundRefused("INVALID_URL", "the URL cannot be called") from None
    try:
        async with asyncio.timeout(policy.timeout_s * DEADLINE_TIMEOUTS):
            for hop in range(MAX_REDIRECTS + 1):
                assert next_request is not None
                _check_scheme(policy, next_request.url, first=hop == 0)
                response = await client.send(next_request, stream=True, follow_redirects=False)
                try:
                    next_request = response.next_request
                    if next_request is None:
                        return response.status_code, await _read_capped(policy, response)
                    if not follow_redirects:
                        raise OutboundRefused(
                            "REDIRECT_REFUSED",
                            f"the server answered with a redirect (HTTP {response.status_code}), "
                            "which is not followed for this call",
                        )
                finally:
                    await response.aclose()
            raise OutboundRefused("TOO_MANY_REDIRECTS", f"more than {MAX_REDIRECTS} redirects")
    except (httpx.TimeoutException, TimeoutError):
        raise OutboundRefused("TIMEOUT", "the server did not answer in time") from None
    except httpx.ConnectError as error:
        if "private-address" in str(error):
            raise OutboundRefused(
                "PRIVATE_ADDRESS", "the host resolves to a private or local address"
            ) from None
        raise OutboundRefused("UNREACHABLE", "could not connect to the server") from None
    except httpx.HTTPError as error:
        raise OutboundRefused("HTTP_ERROR", type(error).__name__) from None
    except (httpx.InvalidURL, UnicodeError):
        # A URL httpx cannot read: one stored before hosts were checked at save, one a server
        # named (a redirect's Location, a discovery document's jwks_uri), or a prefix joined on.
        raise OutboundRefused(
            "INVALID_URL", "the URL, or a URL it redirected to, cannot be called"
        ) from None


def _check_scheme(policy: OutboundPolicy, url: httpx.URL, *, first: bool) -> None:
    if url.scheme == "https" or (url.scheme == "http" and policy.allow_insecure_http):
        return
    if first:
        raise OutboundRefused("INSECURE_URL", "only https:// URLs are called")
    raise OutboundRefused("INSECURE_REDIRECT", "a redirect led to plain http")


async def _read_capped(policy: OutboundPolicy, response: httpx.Response) -> bytes:
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body.extend(chunk)
        if len(body) > policy.max_response_bytes:
            raise OutboundRefused(
                "RESPONSE_TOO_LARGE", f"the response exceeds {policy.max_response_bytes} bytes"
            )
    return bytes(body)


def parse_json(body: bytes) -> Any:
    try:
        # Depth-bounded: arrays nested thousands deep would recurse out of json.loads.
        return loads_bounded(body)
    except ValueError:  # not JSON, not text, or nested too deep (JsonTooDeep)
        raise OutboundRefused("NOT_JSON", "the response is not JSON") from None


async def fetch_json(
    client: httpx.AsyncClient, policy: OutboundPolicy, url: str, *, follow_redirects: bool = True
) -> Any:
    """GET ``url`` under ``policy`` and parse its JSON body; raises OutboundRefused."""
    status, body = await exchange(
        client, policy, "GET", url, headers={"accept": "application/json"},
        follow_redirects=follow_redirects,
    )  # fmt: skip
    if status >= 400:
        raise OutboundRefused("HTTP_STATUS", f"the server answered HTTP {status}")
    return parse_json(body)
