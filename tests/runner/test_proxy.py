"""The egress proxy on its Unix socket, talked to directly (no sandbox needed)."""

import socket
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
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(5)
        client.connect(str(sock))
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
