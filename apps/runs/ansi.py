"""ANSI colours in logs to HTML, safely.

Logs are written by untrusted code. Every character of text is HTML-escaped; escape
sequences are parsed, never passed through: SGR codes (colours, bold, …) become spans
whose class names come from a fixed table here, every other control sequence (cursor
moves, OSC titles and hyperlinks, lone ESC) is dropped. No attribute value is ever taken
from the input. 256-colour and true-colour codes map to the nearest of the 16 colours.
"""

import re
from dataclasses import dataclass, replace
from html import escape

# CSI (ESC [ params final), OSC (ESC ] … BEL or ESC \), other two-byte escapes, lone ESC.
_ESCAPE = re.compile(
    r"\x1b\[([0-9;:?<=>]{0,64})[ -/]{0,4}([@-~])"
    r"|\x1b\][^\x07\x1b]{0,4096}(?:\x07|\x1b\\)?"
    r"|\x1b[@-Z\\-_]"
    r"|\x1b"
)
# C0 controls other than tab, and DEL: dropped (newline and CR are handled by the caller).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_MAX_PARAMS = 32

_BASIC = [
    (0, 0, 0),
    (205, 49, 49),
    (13, 188, 121),
    (229, 229, 16),
    (36, 114, 200),
    (188, 63, 188),
    (17, 168, 205),
    (229, 229, 229),
    (102, 102, 102),
    (241, 76, 76),
    (35, 209, 139),
    (245, 245, 67),
    (59, 142, 234),
    (214, 112, 214),
    (41, 184, 219),
    (255, 255, 255),
]


def _nearest(r: int, g: int, b: int) -> int:
    return min(
        range(16),
        key=lambda i: sum((a - c) ** 2 for a, c in zip(_BASIC[i], (r, g, b), strict=True)),
    )


def _from_256(n: int) -> int | None:
    if not 0 <= n <= 255:
        return None
    if n < 16:
        return n
    if n >= 232:
        level = 8 + (n - 232) * 10
        return _nearest(level, level, level)
    n -= 16
    steps = (0, 95, 135, 175, 215, 255)
    return _nearest(steps[n // 36], steps[(n // 6) % 6], steps[n % 6])


@dataclass(frozen=True)
class Style:
    fg: int | None = None
    bg: int | None = None
    bold: bool = False
    dim: bool = False
    italic: bool = False
    underline: bool = False
    inverse: bool = False
    strike: bool = False

    def classes(self) -> str:
        names = []
        fg, bg = (self.bg, self.fg) if self.inverse else (self.fg, self.bg)
        if self.inverse:
            fg = 0 if fg is None else fg
            bg = 7 if bg is None else bg
        if fg is not None:
            names.append(f"ansi-fg-{fg}")
        if bg is not None:
            names.append(f"ansi-bg-{bg}")
        for flag in ("bold", "dim", "italic", "underline", "strike"):
            if getattr(self, flag):
                names.append(f"ansi-{flag}")
        return " ".join(names)


PLAIN = Style()
_FLAGS_ON = {1: "bold", 2: "dim", 3: "italic", 4: "underline", 7: "inverse", 9: "strike"}
_FLAGS_OFF = {
    22: ("bold", "dim"),
    23: ("italic",),
    24: ("underline",),
    27: ("inverse",),
    29: ("strike",),
}


def _extended(params: list[int], i: int) -> tuple[int | None, int]:
    """Colour of a 38/48 code starting at params[i] (the 5 or 2), and the next index."""
    if i < len(params) and params[i] == 5 and i + 1 < len(params):
        return _from_256(params[i + 1]), i + 2
    if i < len(params) and params[i] == 2 and i + 3 < len(params):
        r, g, b = params[i + 1 : i + 4]
        if all(0 <= v <= 255 for v in (r, g, b)):
            return _nearest(r, g, b), i + 4
        return None, i + 4
    return None, len(params)


def apply_sgr(style: Style, raw: str) -> Style:
    """The style after an SGR sequence with parameters `raw` (e.g. "1;31")."""
    try:
        params = [int(p) if p else 0 for p in re.split("[;:]", raw)[:_MAX_PARAMS]] if raw else [0]
    except ValueError:
        return style
    i = 0
    while i < len(params):
        p = params[i]
        i += 1
        if p == 0:
            style = PLAIN
        elif p in _FLAGS_ON:
            style = replace(style, **{_FLAGS_ON[p]: True})
        elif p in _FLAGS_OFF:
            style = replace(style, **dict.fromkeys(_FLAGS_OFF[p], False))
        elif 30 <= p <= 37:
            style = replace(style, fg=p - 30)
        elif 90 <= p <= 97:
            style = replace(style, fg=p - 90 + 8)
        elif 40 <= p <= 47:
            style = replace(style, bg=p - 40)
        elif 100 <= p <= 107:
            style = replace(style, bg=p - 100 + 8)
        elif p == 39:
            style = replace(style, fg=None)
        elif p == 49:
            style = replace(style, bg=None)
        elif p in (38, 48):
            colour, i = _extended(params, i)
            if colour is not None:
                style = replace(style, fg=colour) if p == 38 else replace(style, bg=colour)
    return style


def _span(text: str, style: Style) -> str:
    if not text:
        return ""
    text = escape(text, quote=True)
    classes = style.classes()
    return f'<span class="{classes}">{text}</span>' if classes else text


def _last_overwrite(line: str) -> str:
    """A carriage return overwrites the line (progress bars): keep the part that shows
    last, after the style codes of the parts it overwrote."""
    if "\r" not in line:
        return line
    parts = line.split("\r")
    keep = len(parts) - 1
    while keep > 0 and not _ESCAPE.sub("", parts[keep]):
        keep -= 1
    styles = "".join(
        m.group(0) for p in parts[:keep] for m in _ESCAPE.finditer(p) if m.group(2) == "m"
    )
    return styles + parts[keep]


def line_to_html(line: str, style: Style = PLAIN) -> tuple[str, Style]:
    """One log line (without its newline) as escaped HTML, and the style after it."""
    line = _last_overwrite(line)
    out: list[str] = []
    pos = 0
    for match in _ESCAPE.finditer(line):
        out.append(_span(_CONTROL.sub("", line[pos : match.start()]), style))
        pos = match.end()
        if match.group(2) == "m":
            style = apply_sgr(style, match.group(1) or "")
    out.append(_span(_CONTROL.sub("", line[pos:]), style))
    return "".join(out), style


def to_html_lines(text: str) -> list[str]:
    """Every line of `text` as escaped HTML; styles carry over from line to line."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    out, style = [], PLAIN
    for line in lines:
        html, style = line_to_html(line, style)
        out.append(html)
    return out


def strip(text: str) -> str:
    """The text without escape sequences or control characters (for plain views)."""
    return _CONTROL.sub("", _ESCAPE.sub("", text))
