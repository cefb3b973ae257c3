"""The egress proxy on its Unix socket, talked to directly (no sandbox needed)."""

import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from deltaci_runner.proxy import EgressProxy


@pytest.fixture
def origin(host_http) -> int:
    return host_http.server_address[1]


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[tuple[Path, list]]:
    decisions: list = []
    sock = tmp_path / "proxy.sock"
    egress = EgressProxy(sock, ["localhost"], on_decision=lambda *d: decisions.append(d))
    egress.start()
    yield sock, decisions
    egress.stop()


def ask(sock: Path, request: bytes) -> bytes:
    # Through /proc/self/fd: pytest's tmp_path inside a job's deep TMPDIR can be longer
    # than a Unix socket path may be.
    fd = os.open(sock.parent, os.O_RDONLY | os.O_DIRECTORY)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(5)
        try:
            client.connect(f"/proc/self/fd/{fd}/{sock.name}")
        finally:
            os.close(fd)
        client.sendall(request)
        data = b""
        while chunk := client.recv(65536):
            data += chunk
            if request.startswith(b"CONNECT") and b"\r\n\r\n" in data and b" 200 " in data:
                client.sendall(b"GET /tunnelled HTTP/1.0\r\nHost: localhost\r\n\r\n")
                request = b"done"
        return data


def test_it_tunnels_connect_to_an_allowed_host(proxy, origin: int) -> None:
    sock, decisions = proxy
    answer = ask(sock, f"CONNECT localhost:{origin} HTTP/1.1\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 200 Connection Established")
    assert answer.endswith(b"host-says-hi/tunnelled")
    assert decisions == [("localhost", origin, True)]


def test_it_forwards_absolute_form_http_to_an_allowed_host(proxy, origin: int) -> None:
    sock, _ = proxy
    request = f"GET http://localhost:{origin}/x?y=1 HTTP/1.1\r\nHost: localhost\r\n\r\n"
    answer = ask(sock, request.encode())
    assert answer.startswith(b"HTTP/1.0 200")
    assert answer.endswith(b"host-says-hi/x?y=1")


def test_it_refuses_other_hosts_with_403(proxy, origin: int) -> None:
    sock, decisions = proxy
    for request in (
        f"CONNECT 127.0.0.1:{origin} HTTP/1.1\r\n\r\n",
        f"GET http://evil.example:{origin}/ HTTP/1.1\r\nHost: evil.example\r\n\r\n",
    ):
        assert ask(sock, request.encode()).startswith(b"HTTP/1.1 403 Forbidden")
    assert [allowed for *_, allowed in decisions] == [False, False]


def test_it_rejects_requests_that_are_not_proxy_requests(proxy) -> None:
    sock, _ = proxy
    assert ask(sock, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 400")


@pytest.fixture
def resolving(tmp_path: Path):
    """A proxy whose name lookups come from a table (no DNS here); records each lookup."""
    started: list[EgressProxy] = []
    lookups: list[str] = []

    def make(allow: list[str], table: dict[str, list[str]]) -> tuple[Path, list]:
        decisions: list = []

        def resolver(host: str, port: int) -> list[str]:
            lookups.append(host)
            if host not in table:
                raise socket.gaierror("no such name")
            return table[host]

        sock = tmp_path / f"proxy{len(started)}.sock"
        egress = EgressProxy(
            sock, allow, on_decision=lambda *d: decisions.append(d), resolver=resolver
        )
        egress.start()
        started.append(egress)
        return sock, decisions

    make.lookups = lookups
    yield make
    for egress in started:
        egress.stop()


def test_a_wildcard_entry_never_reaches_loopback(resolving, origin: int) -> None:
    sock, decisions = resolving(["*.wild.example"], {"svc.wild.example": ["127.0.0.1"]})
    answer = ask(sock, f"CONNECT svc.wild.example:{origin} HTTP/1.1\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 403 Forbidden")
    assert b"resolves to 127.0.0.1" in answer
    assert decisions == [("svc.wild.example", origin, False)]


def test_a_host_named_exactly_may_be_internal_and_is_reached_at_the_checked_address(
    resolving, origin: int
) -> None:
    sock, decisions = resolving(["mirror.corp"], {"mirror.corp": ["127.0.0.1"]})
    request = f"GET http://mirror.corp:{origin}/simple HTTP/1.1\r\nHost: mirror.corp\r\n\r\n"
    answer = ask(sock, request.encode())
    assert answer.startswith(b"HTTP/1.0 200") and answer.endswith(b"host-says-hi/simple")
    assert decisions == [("mirror.corp", origin, True)]
    assert resolving.lookups == ["mirror.corp"]  # looked up once: no second, rebindable lookup


def test_cloud_metadata_is_refused_even_when_named(resolving) -> None:
    sock, decisions = resolving(["metadata.internal"], {"metadata.internal": ["169.254.169.254"]})
    request = b"GET http://metadata.internal/latest/ HTTP/1.1\r\nHost: metadata.internal\r\n\r\n"
    answer = ask(sock, request)
    assert answer.startswith(b"HTTP/1.1 403 Forbidden") and b"169.254.169.254" in answer
    assert decisions == [("metadata.internal", 80, False)]


def test_a_name_that_does_not_resolve_is_a_502(resolving) -> None:
    sock, decisions = resolving(["gone.example"], {})
    answer = ask(sock, b"CONNECT gone.example:443 HTTP/1.1\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 502 Bad Gateway") and b"cannot resolve" in answer
    assert decisions == [("gone.example", 443, False)]


def test_it_serves_from_a_directory_too_deep_for_a_unix_socket_path(tmp_path: Path, origin) -> None:
    deep = tmp_path.joinpath(*[f"a-rather-long-directory-name-{i}" for i in range(5)])
    deep.mkdir(parents=True)
    sock = deep / "proxy.sock"
    assert len(str(sock)) > 108
    egress = EgressProxy(sock, ["localhost"])
    egress.start()
    try:
        assert sock.is_socket() and stat.S_IMODE(sock.stat().st_mode) == 0o600
        answer = ask(sock, f"CONNECT localhost:{origin} HTTP/1.1\r\n\r\n".encode())
        assert answer.startswith(b"HTTP/1.1 200 Connection Established")
    finally:
        egress.stop()
    assert not sock.exists()
