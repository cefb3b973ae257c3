"""ANSI colours become spans with fixed class names; nothing from the log is ever passed
through as markup."""

import re

import pytest

from apps.runs.ansi import line_to_html, strip, to_html_lines

TAG = re.compile(r"<(/?)([a-z]+)([^>]*)>")


def tags(html: str) -> list[tuple[str, str]]:
    return [(name, attrs) for _, name, attrs in TAG.findall(html)]


def test_it_turns_sgr_colours_into_classes():
    html, _ = line_to_html("\x1b[1;31mFAILED\x1b[0m tests")
    assert html == '<span class="ansi-fg-1 ansi-bold">FAILED</span> tests'


def test_it_carries_colour_across_lines_until_reset():
    lines = to_html_lines("\x1b[32mok\nstill green\x1b[0m\nplain\n")
    assert lines == [
        '<span class="ansi-fg-2">ok</span>',
        '<span class="ansi-fg-2">still green</span>',
        "plain",
    ]


def test_it_maps_256_and_true_colour_to_the_sixteen_classes():
    html, _ = line_to_html("\x1b[38;5;196mred\x1b[48;2;0;0;255mblue-bg\x1b[38;5;9999mx")
    assert 'class="ansi-fg-9"' in html or 'class="ansi-fg-1"' in html
    assert "ansi-bg-4" in html or "ansi-bg-12" in html
    assert all(name == "span" for name, _ in tags(html))


@pytest.mark.parametrize(
    "hostile",
    [
        "<script>alert(1)</script>",
        '"><img src=x onerror=alert(1)>',
        '\x1b[31;"><script>alert(1)</script>m',
        "\x1b]8;;javascript:alert(1)\x1b\\click\x1b]8;;\x1b\\",
        "\x1b]0;<title>pwn</title>\x07",
        "\x1b[" + "1;" * 5000 + "31mlong",
        "\x1b[?1049h\x1b[2J\x1b[H\x1b(B\x1b=",
        "a\x00b\x07c\x08d\x7f",
        "&lt;already&gt; &amp;",
    ],
)
def test_it_never_passes_markup_or_control_sequences_through(hostile):
    html, _ = line_to_html(hostile)
    for name, attrs in tags(html):
        assert name == "span"
        assert re.fullmatch(r' class="[a-z0-9 -]+"|', attrs), attrs
    assert "<script" not in html and "<img" not in html and "<title" not in html
    assert "javascript:" not in html
    assert "\x1b" not in html and "\x00" not in html and "\x07" not in html


def test_it_keeps_the_last_overwrite_of_a_carriage_return_line():
    html, _ = line_to_html("\x1b[33m 10%\r 50%\r100% done\r")
    assert html == '<span class="ansi-fg-3">100% done</span>'


def test_it_escapes_ampersands_and_quotes():
    html, _ = line_to_html("a & b \"c\" 'd'")
    assert html == "a &amp; b &quot;c&quot; &#x27;d&#x27;"


def test_strip_removes_every_escape():
    assert strip("\x1b[1mbold\x1b[0m \x1b]8;;u\x1b\\link\x1b]8;;\x1b\\") == "bold link"
