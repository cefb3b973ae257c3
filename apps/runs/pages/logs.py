"""The attempt log as numbered, anchored, escaped HTML lines (colours through
apps/runs/ansi.py), and the byte windows the page and its live tail show. Logs are read
only through apps/artifacts/logs."""

from dataclasses import dataclass

from django.utils.safestring import SafeString, mark_safe

from apps.artifacts import logs
from apps.runs.ansi import to_html_lines
from apps.runs.choices import ATTEMPT_TERMINAL
from apps.runs.models import JobAttempt

PAGE_BYTES = 1024 * 1024  # the page shows at most the last MiB; "download raw" has it all
TAIL_BYTES = 256 * 1024  # one poll answers with at most this much
MAX_OFFSET = 1 << 40


@dataclass
class Window:
    start: int  # byte offset of the first shown byte
    end: int  # byte offset after the last shown byte (the next poll's offset)
    first_line: int
    html: SafeString
    size: int  # bytes stored so far
    finished: bool  # the attempt ended: nothing more will come

    @property
    def clipped(self) -> bool:
        return self.start > 0


def render_lines(data: bytes, first_line: int) -> SafeString:
    """Lines as `<div class="line" id="L12">…</div>`; every character of the log is
    escaped by to_html_lines, the rest is markup made here from integers."""
    lines = to_html_lines(data.decode("utf-8", "replace"))
    return mark_safe(  # noqa: S308 - text escaped in ansi.to_html_lines, numbers are ints
        "".join(
            f'<div class="line" id="L{n}"><a class="ln" href="#L{n}">{n}</a>'
            f'<span class="tx">{html}</span></div>'
            for n, html in enumerate(lines, start=first_line)
        )
    )


def window(attempt: JobAttempt, offset: int | None = None) -> Window:
    """What to show from `offset` (None: the page's own tail). While the attempt runs
    only complete lines are shown; the partial last line comes with the next poll."""
    finished = attempt.state in ATTEMPT_TERMINAL
    data = logs.read(attempt)
    end = len(data) if finished else data.rfind(b"\n") + 1
    limit = PAGE_BYTES if offset is None else TAIL_BYTES
    if offset is None:
        start = max(0, end - limit)
        if start:  # begin on a line boundary
            start = data.find(b"\n", start - 1, end) + 1 or end
    else:
        start = min(max(0, offset), end)
        stop = min(end, start + limit)
        if stop < end:  # more follows: stop after the last whole line that fits
            cut = data.rfind(b"\n", start, stop)
            stop = cut + 1 if cut >= 0 else stop
        end = stop
    first_line = data.count(b"\n", 0, start) + 1
    return Window(
        start=start,
        end=end,
        first_line=first_line,
        html=render_lines(data[start:end], first_line),
        size=len(data),
        finished=finished,
    )
