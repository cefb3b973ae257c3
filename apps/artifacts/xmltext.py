"""Untrusted XML text made parseable: the document's encoding, and the characters XML
1.0 forbids dropped one by one (so a stray control character, an ANSI colour escape or a
reference to a forbidden character costs itself, never the whole document)."""

import codecs
import re
from collections.abc import Iterator
from typing import BinaryIO

# ANSI CSI sequences (colours), then C0 controls XML 1.0 forbids and non-characters.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")
_FORBIDDEN = str.maketrans(
    dict.fromkeys([*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0xFFFE, 0xFFFF])
)
_CHARREF = re.compile(r"&#(x[0-9a-fA-F]{1,8}|[0-9]{1,10});")
_DECLARED = re.compile(rb"^<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]{1,40})[\"']")


def encoding(head: bytes) -> str:
    """The document's encoding from its BOM or declaration; UTF-8 otherwise."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    m = _DECLARED.match(head)
    if m:
        try:
            return codecs.lookup(m.group(1).decode("ascii")).name
        except LookupError:
            pass
    return "utf-8"


def _charref(m: re.Match) -> str:
    ref = m.group(1)
    try:
        code = int(ref[1:], 16) if ref[0] == "x" else int(ref)
    except ValueError:
        return ""
    ok = code in (9, 10, 13) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0x10FFFF
    return m.group(0) if ok and code not in (0xFFFE, 0xFFFF) else ""


def clean(text: str) -> str:
    """Drop what XML 1.0 forbids, character by character (and ANSI sequences whole)."""
    if "\x1b" in text:
        text = _ANSI.sub("", text)
    text = text.translate(_FORBIDDEN)
    return _CHARREF.sub(_charref, text) if "&#" in text else text


def chunks(source: bytes | BinaryIO, limit: int, size: int) -> Iterator[bytes]:
    """At most `limit` bytes of `source`, `size` bytes at a time."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source[:limit])
        for i in range(0, len(data), size):
            yield data[i : i + size]
        return
    read = 0
    while read < limit:
        chunk = source.read(min(size, limit - read))
        if not chunk:
            return
        read += len(chunk)
        yield chunk
