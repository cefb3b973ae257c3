"""The job log: mask secrets, spool to a private file, stream chunks to the control plane.

Masking happens before a byte is spooled, so nothing unmasked ever leaves the
runner. A secret split across two reads is caught by holding back the longest
tail that could still be the start of a secret.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable

from deltaci_runner.client import (
    ClientError,
    ControlPlane,
    LogGap,
    ProtocolError,
    StaleLease,
    backoff_delays,
)
from deltaci_runner.jlog import ContextLogger

MASK = b"***"
SEND_EVERY_SECONDS = 1.0
SEND_AT_BYTES = 64 * 1024
MAX_CHUNK_BYTES = 256 * 1024
DEFAULT_CAP_BYTES = 64 * 1024 * 1024
MAX_STALLS = 5


class Masker:
    """Replaces every occurrence of every secret value with `***`, across feed boundaries."""

    def __init__(self, secrets: Iterable[str]) -> None:
        patterns: set[bytes] = set()
        for value in secrets:
            if not value:
                continue
            patterns.add(value.encode())
            # A multi-line secret (a key file) is also masked line by line, as tools re-wrap it.
            patterns.update(
                line.strip().encode() for line in value.splitlines() if len(line.strip()) >= 4
            )
        self._patterns = sorted(patterns, key=len, reverse=True)
        self._pending = b""

    def feed(self, data: bytes) -> bytes:
        """Masked bytes that are safe to emit now; a possible secret prefix is kept back."""
        if not self._patterns:
            return data
        text = self._pending + data
        for pattern in self._patterns:
            text = text.replace(pattern, MASK)
        hold = self._held_tail(text)
        self._pending = text[len(text) - hold :] if hold else b""
        return text[: len(text) - hold]

    def flush(self) -> bytes:
        out, self._pending = self._pending, b""
        return out

    def mask(self, text: str) -> str:
        """Mask a complete string (summaries, notes) without touching the stream state."""
        data = text.encode()
        for pattern in self._patterns:
            data = data.replace(pattern, MASK)
        return data.decode(errors="replace")

    def _held_tail(self, text: bytes) -> int:
        longest = min(len(text), len(self._patterns[0]) - 1)
        for size in range(longest, 0, -1):
            tail = text[-size:]
            if any(p.startswith(tail) for p in self._patterns):
                return size
        return 0


class LogSpool:
    """Append-only, masked copy of the job log in a runner-private temp file."""

    def __init__(self, masker: Masker, cap_bytes: int = DEFAULT_CAP_BYTES) -> None:
        self._masker = masker
        self._cap = cap_bytes
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the spool
        self._size = 0
        self._truncated = False
        self._closed = False
        self._lock = threading.RLock()  # re-entered by the uploader while it waits on `changed`
        self.changed = threading.Condition(self._lock)

    @property
    def size(self) -> int:
        with self._lock:
            return self._size

    @property
    def closed(self) -> bool:
        with self._lock:
            return self._closed

    def write(self, data: bytes) -> None:
        with self._lock:
            if self._closed:
                return
            self._append(self._masker.feed(data))

    def note(self, text: str) -> None:
        """A line from the runner itself, distinguishable from the job's output."""
        self.write(f"[deltaci] {text}\n".encode())

    def close(self) -> None:
        """Flush the masker's held tail; no more writes after this."""
        with self._lock:
            if not self._closed:
                self._append(self._masker.flush())
                self._closed = True
                self.changed.notify_all()

    def read(self, start: int, length: int) -> bytes:
        with self._lock:
            length = max(0, min(length, self._size - start))
        return os.pread(self._file.fileno(), length, start) if length else b""

    def discard(self) -> None:
        self._file.close()

    def _append(self, data: bytes) -> None:
        if not data or self._truncated:
            return
        room = self._cap - self._size
        if len(data) > room:
            data = data[: max(room, 0)] + b"\n[deltaci] log truncated: over the runner's cap\n"
            self._truncated = True
        os.pwrite(self._file.fileno(), data, self._size)
        self._size += len(data)
        self.changed.notify_all()


class LogUploader(threading.Thread):
    """Sends spooled bytes by offset: every second or 64 KiB, retrying, resuming on 416."""

    def __init__(
        self,
        plane: ControlPlane,
        lease_id: str,
        spool: LogSpool,
        *,
        on_stale: Callable[[str], None],
        log: ContextLogger,
    ) -> None:
        super().__init__(name="log-uploader", daemon=True)
        self._plane = plane
        self._lease_id = lease_id
        self._spool = spool
        self._on_stale = on_stale
        self._log = log
        self._halt = threading.Event()
        self._cursor = 0
        self._cursor_lock = threading.Lock()
        self._stalls = 0
        self._chunk = MAX_CHUNK_BYTES

    @property
    def bytes_sent(self) -> int:
        with self._cursor_lock:
            return self._cursor

    def stop(self) -> None:
        self._halt.set()
        with self._spool.changed:
            self._spool.changed.notify_all()

    def flush(self, timeout: float) -> bool:
        """Wait until every spooled byte is acknowledged (call after `spool.close()`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.is_alive():
            if self._spool.closed and self.bytes_sent >= self._spool.size:
                return True
            with self._spool.changed:
                self._spool.changed.notify_all()
            time.sleep(0.05)
        return self._spool.closed and self.bytes_sent >= self._spool.size

    def run(self) -> None:
        delays = backoff_delays(cap=5.0)
        last_send = time.monotonic()
        while not self._halt.is_set():
            with self._spool.changed:
                pending = self._spool.size - self.bytes_sent
                due = time.monotonic() - last_send >= SEND_EVERY_SECONDS
                if pending <= 0 or (pending < SEND_AT_BYTES and not due and not self._spool.closed):
                    self._spool.changed.wait(timeout=0.2 if pending > 0 else SEND_EVERY_SECONDS)
                    continue
            try:
                progressed = self._send_one()
                last_send = time.monotonic()
                if progressed:
                    delays = backoff_delays(cap=5.0)
                else:
                    self._halt.wait(delays())
            except StaleLease as exc:
                self._on_stale(exc.reason)
                return
            except ClientError as exc:
                if isinstance(exc, ProtocolError) and exc.status == 413:
                    self._chunk = max(4096, self._chunk // 2)  # the server's limit is lower
                delay = delays()
                self._log.warning("log chunk not accepted, retrying", error=str(exc), delay=delay)
                self._halt.wait(delay)

    def _send_one(self) -> bool:
        """Send the chunk at the cursor; False when the server's offset did not move."""
        start = self.bytes_sent
        data = self._spool.read(start, self._chunk)
        if not data:
            return True
        try:
            next_offset = self._plane.send_log(self._lease_id, start, data)
        except LogGap as gap:
            self._log.info("log gap, resuming", next_offset=gap.next_offset, sent=start)
            next_offset = gap.next_offset
        next_offset = max(0, min(next_offset, self._spool.size))
        if next_offset != start:
            self._stalls = 0
        else:
            self._stalls += 1
            if self._stalls > MAX_STALLS:
                # The server keeps refusing to advance (e.g. its cap); don't spin forever.
                self._log.warning("log not advancing, dropping the rest", offset=start)
                next_offset = self._spool.size
        with self._cursor_lock:
            self._cursor = next_offset
        return next_offset != start
