"""Runs INSIDE the sandbox (stdlib only, no imports of this package): 127.0.0.1:PORT -> Unix socket.

The sandbox has no network but loopback, so HTTP(S)_PROXY points here and
every connection is relayed to the runner's egress proxy through the bound
Unix socket. Usage: forwarder.py HOST PORT SOCKET -- COMMAND...
It binds first, forks the relay into the background, then execs COMMAND, so
the proxy is ready before the step's first line runs and dies with the sandbox.
Without `-- COMMAND` it prints `ready` once bound and relays in the foreground
(the container executor runs it in the container's network namespace).
"""

import contextlib
import os
import socket
import sys
import threading


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


def _relay(client: socket.socket, socket_path: str) -> None:
    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        upstream.connect(socket_path)
    except OSError:
        client.close()
        upstream.close()
        return
    back = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
    back.start()
    _pipe(client, upstream)
    back.join()
    client.close()
    upstream.close()


def _serve(listener: socket.socket, socket_path: str) -> None:
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    while True:
        client, _ = listener.accept()
        threading.Thread(target=_relay, args=(client, socket_path), daemon=True).start()


def main(argv: list[str]) -> None:
    host, port, socket_path, *rest = argv
    sep, *command = rest or ["--", ""]
    if sep != "--" or (rest and not command):
        raise SystemExit("usage: forwarder.py HOST PORT SOCKET [-- COMMAND...]")
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, int(port)))
    listener.listen(64)
    if not rest:
        print("ready", flush=True)
        _serve(listener, socket_path)
    if os.fork() == 0:
        try:
            _serve(listener, socket_path)
        finally:
            os._exit(0)
    listener.close()
    os.execvp(command[0], command)  # noqa: S606 - the step command, as bwrap would run it


if __name__ == "__main__":
    main(sys.argv[1:])
