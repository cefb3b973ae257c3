"""The attempt log as numbered, anchored, escaped HTML lines (colours through
apps/runs/ansi.py), shown in windows of lines, grouped into the runner's step sections
(`[deltaci] step 2/3: …` opens one, `[deltaci] step 2 done in 1.20s` closes it), searched
on the server. Logs are read only through apps/artifacts/logs."""

import bisect
import re
from dataclasses import dataclass, field

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from apps.artifacts import logs
from apps.runs.ansi import to_html_lines
from apps.runs.choices import ATTEMPT_TERMINAL
from apps.runs.models import JobAttempt
from apps.runs.templatetags.runs_extras import human_seconds

WINDOW = 500  # lines a window shows; the rest loads on demand
BEFORE = 100  # a window opened at line N starts this many lines above it
MAX_LINES = 2000  # the most one request may ask for
TAIL_BYTES = 256 * 1024  # one poll answers with at most this much
MAX_OFFSET = 1 << 40
MAX_QUERY = 200
MAX_MATCHES = 200

_STEP = re.compile(rb"^\[deltaci\] step (\d+)/(\d+): ([^\n]*)$", re.M)
_END = re.compile(
    rb"^\[deltaci\] step (\d+) (?:done in ([\d.]+)s|failed with exit code (-?\d+)"
    rb"(?: after ([\d.]+)s)?)$",
    re.M,
)
_ERROR = re.compile(rb"(?i)(error\b|\b(failed|fatal|traceback|panic)\b)")


@dataclass
class Section:
    index: int  # the step number; 0 for the runner's set-up before the first step
    title: str
    first: int  # its first line (the step's marker line)
    last: int = 0
    seconds: float | None = None
    exit_code: int | None = None

    @property
    def failed(self) -> bool:
        return self.exit_code is not None


@dataclass
class Log:
    """One attempt's stored log, indexed by line (only complete lines while it runs)."""

    data: bytes
    size: int  # bytes stored so far
    finished: bool
    starts: list[int] = field(default_factory=list)  # byte offset of each line
    sections: list[Section] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.starts)

    @property
    def end(self) -> int:
        """The byte after the last shown line: the live tail's next offset."""
        return len(self.data)

    def line_at(self, offset: int) -> int:
        """The number of the line starting at or containing byte `offset` (1-based)."""
        return bisect.bisect_right(self.starts, offset)

    def span(self, first: int, last: int) -> bytes:
        """The bytes of lines first..last (inclusive, 1-based)."""
        stop = self.starts[last] if last < self.total else len(self.data)
        return self.data[self.starts[first - 1] : stop]

    def first_error(self) -> int | None:
        """The first line that reads like an error (what a reader looks for first)."""
        found = _ERROR.search(self.data)
        return self.line_at(found.start()) if found else None


def load(attempt: JobAttempt) -> Log:
    finished = attempt.state in ATTEMPT_TERMINAL
    data = logs.read(attempt)
    size = len(data)
    if not finished:
        data = data[: data.rfind(b"\n") + 1]  # the partial last line comes with a later poll
    starts = [0, *(m.end() for m in re.finditer(b"\n", data))]
    if starts[-1] == len(data):
        starts.pop()
    log = Log(data=data, size=size, finished=finished, starts=starts)
    log.sections = _sections(log)
    return log


def _sections(log: Log) -> list[Section]:
    sections: list[Section] = []
    for m in _STEP.finditer(log.data):
        title = m.group(3).decode("utf-8", "replace")
        line = log.line_at(m.start())
        if not sections and line > 1:
            sections.append(Section(index=0, title="Set up", first=1))
        step, steps = int(m.group(1)), int(m.group(2))
        sections.append(Section(index=step, title=f"step {step}/{steps}: {title}", first=line))
    for prev, nxt in zip(sections, sections[1:], strict=False):
        prev.last = nxt.first - 1
    if sections:
        sections[-1].last = log.total
    by_index = {s.index: s for s in sections}
    for m in _END.finditer(log.data):
        section = by_index.get(int(m.group(1)))
        if section is None:
            continue
        took = m.group(2) or m.group(4)
        section.seconds = float(took) if took else None
        if m.group(3) is not None:
            section.exit_code = int(m.group(3))
    return sections


def _lines_html(data: bytes, first: int, tag: str = "div") -> str:
    """Every character of the log is escaped by to_html_lines; the rest is markup made
    here from integers. A step's head line (a <summary>, tag span) numbers without a
    link: a link inside the summary would be a control inside a control."""
    number = '<a class="ln" href="#L{n}">{n}</a>' if tag == "div" else '<span class="ln">{n}</span>'
    return "".join(
        f'<{tag} class="line" id="L{n}">{number.format(n=n)}<span class="tx">{html}</span></{tag}>'
        for n, html in enumerate(to_html_lines(data.decode("utf-8", "replace")), start=first)
    )


def render_lines(data: bytes, first_line: int) -> SafeString:
    """Lines as `<div class="line" id="L12">…</div>` (a log without step markers)."""
    return mark_safe(_lines_html(data, first_line))  # noqa: S308 - escaped in ansi


def _summary(section: Section, log: Log, first: int) -> str:
    state = "failed" if section.failed else ("running" if not log.finished else "")
    took = "" if section.seconds is None else human_seconds(section.seconds)
    extra = (f'<span class="sec-dur">{escape(took)}</span>' if took else "") + (
        f'<span class="sec-state">{state}</span>' if state and section.index else ""
    )
    if first == section.first and section.index:  # the marker line itself heads it
        head = _lines_html(log.span(first, first), first, tag="span")
    else:
        head = f'<span class="sec-title">{escape(section.title)}'
        head += f"{'' if first == section.first else ' (continued)'}</span>"
    return f"<summary>{head}{extra}</summary>"


def render(log: Log, first: int, last: int) -> SafeString:
    """Lines first..last, grouped into collapsible step sections (<details>, one per
    section part in the range, tagged with the step so the page can join parts)."""
    first, last = max(1, first), min(last, log.total)
    if first > last:
        return mark_safe("")  # noqa: S308 - empty
    if not log.sections:
        return render_lines(log.span(first, last), first)
    out = []
    for section in log.sections:
        lo, hi = max(first, section.first), min(last, section.last)
        if lo > hi:
            continue
        body_from = lo + 1 if lo == section.first and section.index else lo
        body = _lines_html(log.span(body_from, hi), body_from) if body_from <= hi else ""
        css = "sec failed" if section.failed else "sec"
        out.append(
            f'<details class="{css}" data-s="{section.index}" open>'
            f"{_summary(section, log, lo)}{body}</details>"
        )
    return mark_safe("".join(out))  # noqa: S308 - text escaped here and in ansi


def around(log: Log, line: int | None) -> tuple[int, int]:
    """The window to open: the end of the log, or the window holding `line`."""
    if line is None or line > log.total:
        return max(1, log.total - WINDOW + 1), log.total
    first = max(1, line - BEFORE)
    return first, min(log.total, first + WINDOW - 1)


def search(log: Log, query: str) -> tuple[list[tuple[int, SafeString]], bool]:
    """Lines containing `query` (plain text, case-insensitive): up to MAX_MATCHES of
    (line number, the line as HTML), and whether there were more."""
    needle = re.compile(re.escape(query.encode()), re.I)
    found: list[tuple[int, SafeString]] = []
    for m in needle.finditer(log.data):
        line = log.line_at(m.start())
        if found and found[-1][0] == line:
            continue
        if len(found) == MAX_MATCHES:
            return found, True
        text = to_html_lines(log.span(line, line).decode("utf-8", "replace"))
        found.append((line, mark_safe(text[0] if text else "")))  # noqa: S308 - ansi escapes
    return found, False


def tail(log: Log, offset: int) -> tuple[int, int, SafeString]:
    """Whole lines from byte `offset` (at most about TAIL_BYTES): (their first line
    number, the next offset, their HTML)."""
    offset = min(max(0, offset), log.end)
    first = log.line_at(offset)
    if first and log.starts[first - 1] != offset:
        first += 1  # an offset inside a line: from the next whole line
    first = max(first, 1)
    if first > log.total:
        return first, log.end, mark_safe("")  # noqa: S308 - empty
    limit = log.starts[first - 1] + TAIL_BYTES
    last = log.total if limit >= log.end else max(first, log.line_at(limit) - 1)
    stop = log.starts[last] if last < log.total else log.end
    return first, stop, render(log, first, last)
