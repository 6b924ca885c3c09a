"""Where connectors may connect, and how much they may read: the transport under the shared client.

SSRF guard
    Every new connection resolves its host here, checks each address, and connects to an
    address it checked; TLS still verifies the certificate for, and sends SNI of, the host name.
    Nothing resolves the name a second time between the check and the connect, so DNS
    rebinding cannot slip an internal address in. Refused unless the allow-list admits them:
    loopback, private (RFC 1918, fc00::/7), shared (100.64.0.0/10), link-local (169.254.0.0/16
    with the cloud metadata service, fe80::/10), multicast, unspecified, reserved and any other
    address that is not globally routable. IPv4-mapped IPv6 addresses are judged as IPv4.

    The allow-list (``INTEGRATIONHUB_HTTP_ALLOW_NETWORKS``) holds CIDRs (``10.0.0.0/8``,
    ``127.0.0.1/32``) and host names: ``vault.internal`` admits that name, ``.internal`` every
    name under it, whatever they resolve to.

Size cap
    A response body larger than the cap (``INTEGRATIONHUB_HTTP_MAX_RESPONSE_BYTES``) stops the
    read with ``PermanentError``. gzip and deflate are decoded here, with the cap on the decoded
    bytes, so a small compressed body cannot unpack into gigabytes; other encodings are refused.

Both raise ``PermanentError``: retrying cannot make a refused address public or a body smaller.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import ssl
import zlib
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpcore
import httpx

from integrationhub.errors import PermanentError

__all__ = ["DEFAULT_MAX_RESPONSE_BYTES", "EgressPolicy", "GuardedTransport", "parse_allow_entry"]

DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_DECODED = frozenset({"gzip", "x-gzip", "deflate"})
_ENCODED_ONLY = frozenset({"content-encoding", "content-length"})  # dropped once decoded
_SETTING_HINT = "INTEGRATIONHUB_HTTP_ALLOW_NETWORKS"


def parse_allow_entry(entry: str) -> IPNetwork | str:
    """A CIDR (or single address) as a network, else a host name (lower case, no trailing dot;
    a leading dot admits every name under it). Raises ValueError for anything else."""
    entry = entry.strip()
    try:
        return ipaddress.ip_network(entry, strict=False)
    except ValueError:
        pass
    name = entry.lower().rstrip(".")
    labels = name.removeprefix(".").split(".")
    if not name or not all(
        label and len(label) <= 63 and label.replace("-", "").isalnum() and label.isascii()
        for label in labels
    ):
        raise ValueError(f"{entry!r} is neither a CIDR nor a host name")
    return name


def _refusal(address: IPAddress) -> str | None:
    """Why an address is no place for a connector to go, or None when it is public."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"  # 169.254.169.254: the cloud metadata service
    if address.is_multicast:
        return "multicast"
    if address.is_unspecified:
        return "unspecified"
    if address.is_reserved:  # before private, which Python's tables make 240.0.0.0/4 too
        return "reserved"
    if address.is_private:
        return "private"
    if not address.is_global:
        return "not globally routable"
    return None


class EgressPolicy:
    """Which addresses a connection may go to: public ones, and what the allow-list admits."""

    def __init__(self, allow: Iterable[str] = ()) -> None:
        self.networks: list[IPNetwork] = []
        self.hosts: set[str] = set()
        self.domains: set[str] = set()
        for entry in allow:
            parsed = parse_allow_entry(entry)
            if isinstance(parsed, str):
                (self.domains if parsed.startswith(".") else self.hosts).add(parsed)
            else:
                self.networks.append(parsed)

    def admits_host(self, host: str) -> bool:
        name = host.lower().rstrip(".")
        return name in self.hosts or any(name.endswith(domain) for domain in self.domains)

    def refusal(self, address: IPAddress) -> str | None:
        reason = _refusal(address)
        if reason is None:
            return None
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in network for network in self.networks):
            return None
        return reason


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks and connects to the checked address, in that order, once."""

    def __init__(self, policy: EgressPolicy) -> None:
        self._policy = policy
        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await _resolve(host, port, timeout)
        if self._policy.admits_host(host):
            allowed = addresses
        else:
            verdicts = [(address, self._policy.refusal(address)) for address in addresses]
            allowed = [address for address, reason in verdicts if reason is None]
            if not allowed:
                address, reason = verdicts[0]
                target = f"{address}" if host == str(address) else f"{host} ({address})"
                raise PermanentError(
                    f"refused to connect to {target}, a {reason} address: connectors may only "
                    f"reach public addresses unless {_SETTING_HINT} admits it"
                )
        failure: Exception | None = None
        for address in allowed:  # the checked address, never the name again
            try:
                return await self._backend.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise PermanentError("connectors may not connect to unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


async def _resolve(host: str, port: int, timeout: float | None) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except TimeoutError as exc:
        raise httpcore.ConnectTimeout(f"resolving {host} timed out") from exc
    except OSError as exc:  # socket.gaierror: unknown name, or no DNS right now
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc.strerror or exc}") from exc
    addresses: list[IPAddress] = []
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


class GuardedTransport(httpx.AsyncHTTPTransport):
    """``httpx.AsyncHTTPTransport`` over the guarded network backend, capping every body."""

    def __init__(
        self,
        *,
        policy: EgressPolicy,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        limits: httpx.Limits,
    ) -> None:
        ssl_context = _ssl_context()
        super().__init__(verify=ssl_context, limits=limits, trust_env=False)
        # httpx takes no network backend, so its pool is built again with ours: the one
        # private attribute used here (httpx 0.28). tests/unit/core/test_egress.py checks that
        # the guard is really in the path.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_GuardedBackend(policy),
        )
        self.max_response_bytes = max_response_bytes

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        cap = self.max_response_bytes
        what = f"{request.method} {_origin(request.url)}"
        length = response.headers.get("Content-Length", "")
        encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
        problem = None
        if encoding not in _DECODED | {"identity", ""}:
            problem = f"{what} answered with Content-Encoding {encoding[:40]!r}, not accepted"
        elif _has_body(request, response) and length.isdigit() and int(length) > cap:
            problem = _too_large(what, cap)
        if problem is not None:
            await response.aclose()
            raise PermanentError(problem)
        headers = response.headers
        if encoding in _DECODED:  # decoded here, under the cap; httpx must not decode again
            headers = httpx.Headers(
                [(k, v) for k, v in headers.multi_items() if k.lower() not in _ENCODED_ONLY]
            )
        return httpx.Response(
            status_code=response.status_code,
            headers=headers,
            stream=_CappedStream(response.stream, cap=cap, what=what, decode=encoding in _DECODED),
            extensions=response.extensions,
        )


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """The system's (certifi's) CAs, loaded once per process: loading costs ~50 ms."""
    return httpx.create_ssl_context(trust_env=False)


def _has_body(request: httpx.Request, response: httpx.Response) -> bool:
    """Whether Content-Length announces a body that will follow (not for HEAD, 204, 304)."""
    return request.method != "HEAD" and response.status_code not in (204, 304)


def _origin(url: httpx.URL) -> str:
    # Only the origin: a path may itself be a secret (a Slack webhook's, say).
    return str(url.copy_with(userinfo=b"", path="", query=None, fragment=None))


def _too_large(what: str, cap: int) -> str:
    return (
        f"{what}: the response body is larger than the cap of {cap} bytes "
        "(INTEGRATIONHUB_HTTP_MAX_RESPONSE_BYTES)"
    )


class _CappedStream(httpx.AsyncByteStream):
    def __init__(self, stream: Any, *, cap: int, what: str, decode: bool) -> None:
        self._stream = stream
        self._cap = cap
        self._what = what
        # 32 + MAX_WBITS: zlib or gzip, told by the header (servers send either for "deflate").
        self._decoder = zlib.decompressobj(32 + zlib.MAX_WBITS) if decode else None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        total = 0
        async for raw in self._stream:
            chunk = self._decode(raw, self._cap - total)
            total += len(chunk)
            if total > self._cap:
                raise PermanentError(_too_large(self._what, self._cap))
            if chunk:
                yield chunk
        if self._decoder is not None and (rest := self._decoder.flush()):
            if total + len(rest) > self._cap:
                raise PermanentError(_too_large(self._what, self._cap))
            yield rest

    def _decode(self, data: bytes, room: int) -> bytes:
        if self._decoder is None:
            return data
        out = b""
        while data:
            try:
                # At most one byte past the room: enough to know the cap is exceeded.
                piece = self._decoder.decompress(data, max(room - len(out), 0) + 1)
            except zlib.error as exc:
                raise PermanentError(f"{self._what}: the compressed body is corrupt") from exc
            out += piece
            if len(out) > room:
                return out
            data = self._decoder.unconsumed_tail
            if self._decoder.eof and self._decoder.unused_data:  # concatenated gzip members
                data = self._decoder.unused_data
                self._decoder = zlib.decompressobj(32 + zlib.MAX_WBITS)
        return out

    async def aclose(self) -> None:
        await self._stream.aclose()
