"""The SSRF guard's decisions and the body cap, without any traffic: the guard refuses before
connecting, and a recording backend stands in for the network where a connect is allowed."""

from __future__ import annotations

import gzip
import ipaddress
import zlib
from collections.abc import AsyncIterator
from typing import Any

import httpcore
import pytest

from integrationhub.core import egress
from integrationhub.core.egress import (
    EgressPolicy,
    _CappedStream,
    _GuardedBackend,
    parse_allow_entry,
)
from integrationhub.core.http import new_client
from integrationhub.errors import PermanentError


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "not globally routable"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "link-local"),
        ("8.8.8.8", None),
        ("2001:4860:4860::8888", None),
    ],
)
def test_addresses_that_are_not_public_are_refused_by_default(address: str, reason: str | None):
    assert EgressPolicy().refusal(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize(
    ("allow", "address"),
    [
        (["10.0.0.0/8"], "10.1.2.3"),
        (["10.0.0.0/8"], "::ffff:10.1.2.3"),
        (["127.0.0.1/32"], "127.0.0.1"),
        (["127.0.0.1"], "127.0.0.1"),
        (["::1/128"], "::1"),
    ],
)
def test_the_allow_list_admits_its_networks(allow: list[str], address: str):
    assert EgressPolicy(allow).refusal(ipaddress.ip_address(address)) is None


def test_the_allow_list_admits_only_its_networks():
    policy = EgressPolicy(["127.0.0.1/32"])
    assert policy.refusal(ipaddress.ip_address("127.0.0.2")) == "loopback"
    assert policy.refusal(ipaddress.ip_address("169.254.169.254")) == "link-local"


@pytest.mark.parametrize(
    ("entry", "parsed"),
    [
        ("10.0.0.0/8", ipaddress.ip_network("10.0.0.0/8")),
        ("10.1.2.3/8", ipaddress.ip_network("10.0.0.0/8")),
        ("fd00::/8", ipaddress.ip_network("fd00::/8")),
        ("Vault.Internal.", "vault.internal"),
        (".corp.example", ".corp.example"),
    ],
)
def test_allow_entries_are_networks_or_host_names(entry: str, parsed: object):
    assert parse_allow_entry(entry) == parsed


@pytest.mark.parametrize("entry", ["", "not a host", "http://x", "a..b", "10.0.0.0/33", "ünï.de"])
def test_allow_entries_that_are_neither_are_refused(entry: str):
    with pytest.raises(ValueError):
        parse_allow_entry(entry)


def test_host_names_in_the_allow_list_match_exactly_or_below_a_dotted_domain():
    policy = EgressPolicy(["vault.internal", ".corp.example"])
    assert policy.admits_host("VAULT.internal")
    assert policy.admits_host("api.corp.example")
    assert not policy.admits_host("corp.example.evil.com")
    assert not policy.admits_host("other.internal")


# --- connecting: resolve once, check, connect to the checked address --------------------------


class _Recorder(httpcore.AsyncNetworkBackend):
    def __init__(self) -> None:
        self.connects: list[str] = []

    async def connect_tcp(self, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        self.connects.append(host)
        return object()

    async def sleep(self, seconds: float) -> None:
        pass


def _backend(monkeypatch: pytest.MonkeyPatch, allow: list[str], *answers: list[str]):
    """A guarded backend whose DNS gives ``answers`` in turn and whose network records."""
    lookups: list[str] = []
    queue = list(answers)

    async def resolve(host: str, port: int, timeout: float | None) -> list[Any]:
        lookups.append(host)
        return [ipaddress.ip_address(a) for a in queue.pop(0)]

    monkeypatch.setattr(egress, "_resolve", resolve)
    backend = _GuardedBackend(EgressPolicy(allow))
    recorder = _Recorder()
    backend._backend = recorder  # type: ignore[assignment]
    return backend, recorder, lookups


async def test_connect_goes_to_the_checked_address_not_the_name(monkeypatch):
    # A rebinding resolver would answer a private address on a second lookup: there is none.
    backend, network, lookups = _backend(monkeypatch, [], ["93.184.216.34"], ["10.0.0.5"])

    await backend.connect_tcp("api.example.test", 443)

    assert network.connects == ["93.184.216.34"]
    assert lookups == ["api.example.test"]


async def test_a_name_with_public_and_private_addresses_connects_only_to_public_ones(monkeypatch):
    backend, network, _ = _backend(monkeypatch, [], ["10.0.0.5", "93.184.216.34"])

    await backend.connect_tcp("mixed.example.test", 443)

    assert network.connects == ["93.184.216.34"]


async def test_a_name_that_resolves_to_a_private_address_is_refused_before_connecting(
    monkeypatch,
):
    backend, network, _ = _backend(monkeypatch, [], ["10.0.0.5"])

    with pytest.raises(PermanentError, match=r"internal\.example\.test \(10\.0\.0\.5\), a private"):
        await backend.connect_tcp("internal.example.test", 80)

    assert network.connects == []


async def test_an_admitted_host_name_connects_to_what_it_resolved_to(monkeypatch):
    backend, network, _ = _backend(monkeypatch, ["vault.internal"], ["10.0.0.7"])

    await backend.connect_tcp("vault.internal", 8200)

    assert network.connects == ["10.0.0.7"]


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("http://127.0.0.1:9/", "127.0.0.1, a loopback address"),
        ("http://[::1]:9/", "::1, a loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254, a link-local address"),
        ("http://10.0.0.1/", "10.0.0.1, a private address"),
        ("http://[::ffff:7f00:1]:9/", "::ffff:7f00:1, a loopback address"),
    ],
)
async def test_the_shared_client_refuses_internal_targets_before_connecting(
    url: str, complaint: str
):
    async with new_client() as client:
        with pytest.raises(PermanentError) as caught:
            await client.get(url)

    assert complaint in caught.value.message
    assert "INTEGRATIONHUB_HTTP_ALLOW_NETWORKS" in caught.value.message


async def test_unix_sockets_are_refused():
    with pytest.raises(PermanentError, match="unix sockets"):
        await _GuardedBackend(EgressPolicy()).connect_unix_socket("/var/run/docker.sock")


# --- the body cap --------------------------------------------------------------------------------


class _Chunks:
    def __init__(self, *chunks: bytes) -> None:
        self._chunks = chunks
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk

    async def aclose(self) -> None:
        self.closed = True


async def _read(stream: _CappedStream) -> bytes:
    return b"".join([chunk async for chunk in stream])


async def test_a_body_within_the_cap_is_read_whole():
    stream = _CappedStream(_Chunks(b"a" * 60, b"b" * 40), cap=100, what="GET x", decode=False)
    assert await _read(stream) == b"a" * 60 + b"b" * 40


async def test_a_body_past_the_cap_stops_naming_the_cap():
    stream = _CappedStream(_Chunks(b"a" * 60, b"b" * 41), cap=100, what="GET x", decode=False)
    with pytest.raises(PermanentError, match="larger than the cap of 100 bytes"):
        await _read(stream)


async def test_a_compressed_body_is_capped_on_its_decoded_size():
    bomb = gzip.compress(b"\0" * 10_000_000)  # about 10 KB on the wire
    stream = _CappedStream(_Chunks(bomb), cap=1024 * 1024, what="GET x", decode=True)
    with pytest.raises(PermanentError, match="larger than the cap of 1048576 bytes"):
        await _read(stream)
    assert len(bomb) < 20_000


@pytest.mark.parametrize(
    "encoded",
    [
        gzip.compress(b"hello world"),
        zlib.compress(b"hello world"),
        gzip.compress(b"hello ") + gzip.compress(b"world"),  # two gzip members
    ],
    ids=["gzip", "deflate", "two-members"],
)
async def test_gzip_and_deflate_are_decoded(encoded: bytes):
    half = len(encoded) // 2
    stream = _CappedStream(_Chunks(encoded[:half], encoded[half:]), cap=100, what="x", decode=True)
    assert await _read(stream) == b"hello world"


async def test_a_corrupt_compressed_body_is_permanent():
    stream = _CappedStream(_Chunks(b"not gzip at all"), cap=100, what="GET x", decode=True)
    with pytest.raises(PermanentError, match="corrupt"):
        await _read(stream)
