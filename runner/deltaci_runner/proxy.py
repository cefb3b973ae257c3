"""Egress proxy for `allowlist` jobs: listens on a Unix socket bound into the sandbox.

Understands `CONNECT host:port` (HTTPS and anything tunnelled) and absolute-form
plain HTTP requests (`GET http://host/…`). A host is admitted when it equals an
allowlist entry or matches a `*.suffix` entry; everything else gets `403`.

Hosts are resolved here, on the runner's side (the sandbox has no DNS), once: the
connection goes to the very address that was checked, so a name cannot be re-pointed
between the check and the connect. Link-local (cloud metadata at 169.254.169.254),
unspecified, multicast and reserved addresses are never reached. Loopback and private
addresses only for a host the allowlist names exactly: a `*.suffix` entry admits public
addresses only, since whoever controls a subdomain's DNS could point it at the runner's
own services.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import socketserver
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

MAX_HEAD_BYTES = 16 * 1024
IO_TIMEOUT = 30.0


EXACT, WILDCARD = "exact", "wildcard"
Resolver = Callable[[str, int], list[str]]


def host_rule(host: str, allow: Iterable[str]) -> str | None:
    """EXACT when an entry names the host, WILDCARD when `*.example.com` covers it (any
    subdomain, not the bare domain), None when nothing admits it."""
    host = host.strip().rstrip(".").lower()
    if not host:
        return None
    rule = None
    for entry in allow:
        entry = entry.strip().rstrip(".").lower()
        if entry.startswith("*."):
            if host.endswith(entry[1:]) and len(host) > len(entry) - 1:
                rule = WILDCARD
        elif entry and host == entry:
            return EXACT
    return rule


def host_allowed(host: str, allow: Iterable[str]) -> bool:
    return host_rule(host, allow) is not None


def address_admitted(address: str, rule: str) -> bool:
    """May a host admitted by `rule` be reached at `address`?"""
    try:
        ip = ipaddress.ip_address(address.partition("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip.is_link_local or ip.is_unspecified or ip.is_multicast:
        return False
    if ip.is_reserved and not ip.is_loopback:  # ::1 sits in IPv6's reserved ::/8
        return False
    if ip.is_global:
        return True
    return rule == EXACT  # loopback, private, shared: only a host named exactly


def resolve(host: str, port: int) -> list[str]:
    """The host's addresses, in the resolver's order of preference."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def split_host_port(authority: str, default_port: int) -> tuple[str, int]:
    """'example.com:443' / '[::1]:80' / 'example.com' -> (host, port)."""
    if authority.startswith("["):
        host, _, rest = authority[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = authority.rpartition(":") if ":" in authority else (authority, "", "")
    return host, int(port) if port else default_port


class _Refused(Exception):
    def __init__(self, status: str, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        client: socket.socket = self.request
        client.settimeout(IO_TIMEOUT)
        try:
            head, rest = self._read_head(client)
            upstream, first_bytes = self._open(head)
        except _Refused as refusal:
            body = f"{refusal.text}\n".encode()
            client.sendall(
                f"HTTP/1.1 {refusal.status}\r\nContent-Type: text/plain\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            return
        except OSError:
            return
        with upstream:
            client.settimeout(None)
            upstream.settimeout(None)
            if head.startswith(b"CONNECT "):
                client.sendall(first_bytes)  # "200 Connection Established"
            else:
                upstream.sendall(first_bytes)  # the request head, rewritten to origin form
            if rest:
                upstream.sendall(rest)
            back = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
            back.start()
            _pipe(client, upstream)
            back.join()

    @staticmethod
    def _read_head(client: socket.socket) -> tuple[bytes, bytes]:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = client.recv(4096)
            if not chunk:
                raise _Refused("400 Bad Request", "incomplete request")
            data += chunk
            if len(data) > MAX_HEAD_BYTES:
                raise _Refused("431 Request Header Fields Too Large", "request head too large")
        head, _, rest = data.partition(b"\r\n\r\n")
        return head + b"\r\n\r\n", rest

    def _open(self, head: bytes) -> tuple[socket.socket, bytes]:
        """Connect upstream if the policy admits the host; returns (socket, bytes to send first)."""
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, version = lines[0].split(" ")
        except ValueError:
            raise _Refused("400 Bad Request", "malformed request line") from None
        if method == "CONNECT":
            host, port = split_host_port(target, 443)
            upstream = self._connect(host, port)
            return upstream, b"HTTP/1.1 200 Connection Established\r\n\r\n"
        if not target.lower().startswith("http://"):
            raise _Refused("400 Bad Request", "only CONNECT and absolute http:// URLs are proxied")
        authority, _, path = target[len("http://") :].partition("/")
        host, port = split_host_port(authority.rpartition("@")[2], 80)
        upstream = self._connect(host, port)
        headers = [
            line
            for line in lines[1:]
            if line and not line.lower().startswith(("proxy-", "connection:", "keep-alive:"))
        ]
        request = [f"{method} /{path} {version}", *headers, "Connection: close", "", ""]
        return upstream, "\r\n".join(request).encode("latin-1")

    def _connect(self, host: str, port: int) -> socket.socket:
        rule = host_rule(host, self.server.allow)
        if rule is None:
            self.server.on_decision(host, port, False)
            raise _Refused("403 Forbidden", f"egress to {host} is not allowed by the job's policy")
        try:
            addresses = self.server.resolve(host, port)
        except (OSError, UnicodeError):
            self.server.on_decision(host, port, False)
            raise _Refused("502 Bad Gateway", f"cannot resolve {host}") from None
        usable = [a for a in addresses if address_admitted(a, rule)]
        self.server.on_decision(host, port, bool(usable))
        if not usable:
            shown = ", ".join(addresses[:3]) or "nothing"
            raise _Refused(
                "403 Forbidden",
                f"egress to {host} is refused: it resolves to {shown}, which this policy "
                "does not reach (link-local and special addresses never; loopback and "
                "private ones only for a host listed exactly)",
            )
        for address in usable:
            try:
                return socket.create_connection((address, port), timeout=IO_TIMEOUT)
            except OSError:
                continue
        raise _Refused("502 Bad Gateway", f"cannot connect to {host}:{port}")


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    allow: tuple[str, ...]
    on_decision: Callable[[str, int, bool], None]
    resolve: Resolver


class EgressProxy:
    """The proxy for one job; `start()` creates the socket, `stop()` closes it."""

    def __init__(
        self,
        socket_path: Path,
        allow: Iterable[str],
        on_decision: Callable[[str, int, bool], None] | None = None,
        resolver: Resolver = resolve,
    ) -> None:
        self.socket_path = socket_path
        self._server = _Server(str(socket_path), _Handler, bind_and_activate=False)
        self._server.allow = tuple(str(a) for a in allow)
        self._server.on_decision = on_decision or (lambda host, port, allowed: None)
        self._server.resolve = resolver
        self._thread: threading.Thread | None = None

    def start(self, owner: tuple[int, int] | None = None) -> None:
        """Bind and serve; `owner` (uid, gid) makes the socket connectable only by the job user."""
        self._bind()
        self._server.server_activate()
        if owner and os.geteuid() == 0:
            os.chown(self.socket_path, *owner)
        os.chmod(self.socket_path, 0o600)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
        )
        self._thread.start()

    def _bind(self) -> None:
        """A Unix socket's path must fit in 108 bytes; a deep work directory does not. Bind
        through /proc/self/fd/<the directory> instead, which names the same place."""
        if len(os.fsencode(self.socket_path)) < 100:
            self._server.server_bind()
            return
        fd = os.open(self.socket_path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            self._server.server_address = f"/proc/self/fd/{fd}/{self.socket_path.name}"
            self._server.server_bind()
        finally:
            os.close(fd)

    def stop(self) -> None:
        if self._thread:
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
