"""Path globs with ``**``, shared by ci.ai.yaml ``paths`` and workspace member lists.

Patterns are anchored at the directory they are relative to: ``*`` and ``?`` stay
inside one path component, ``**`` spans any number of components (zero included),
and a trailing ``/`` means "everything below". Compiled patterns are for ``fullmatch``.

Globs come from the repository, so matching must stay linear however they are written:
a plain translation (``*`` as ``[^/]*``, ``**/`` as ``(?:[^/]*/)*``) backtracks through
every way of splitting a name between k stars, n**(k+1) (8 s for ``*a*a*a*a*b`` against
a 255-character name). As fnmatch does, every wildcard but the last of its run is an
atomic group taking the leftmost place where the fixed-length piece after it matches:
when a later wildcard can absorb whatever an earlier one skipped, the leftmost place
is always one that works, so no other needs trying.
"""

import re
from functools import lru_cache

_DIRS = "(?:[^/]*/)*"  # ** before more pattern: zero or more whole components


@lru_cache(maxsize=4096)
def compile_glob(pattern: str) -> re.Pattern[str]:
    if pattern.endswith("/"):
        pattern += "**"
    if pattern.startswith("./"):
        pattern = pattern[2:]
    parts: list[str] = []
    for part in pattern.split("/"):
        if part == "**" and parts and parts[-1] == "**":
            continue  # a/**/**/b is a/**/b
        parts.append(part)
    # Blocks of plain components between the ** parts: the first is anchored at the
    # start, each later one follows a **; only the last block is pinned by the end.
    blocks: list[list[str]] = [[]]
    for part in parts:
        if part == "**":
            blocks.append([])
        else:
            blocks[-1].append(part)
    out: list[str] = []
    for index, block in enumerate(blocks):
        body = "/".join(_component(part) for part in block)
        last = index == len(blocks) - 1
        if index == 0:
            out.append(body + ("/" if block and not last else ""))
        elif last:
            out.append(_DIRS + body if block else ".*")
        elif block:  # ** B/ followed by another **: B's leftmost place is enough
            out.append(f"(?>{_DIRS}?{body}/)")
    return re.compile("".join(out), re.DOTALL)


def _component(part: str) -> str:
    """One path component: atoms (``?``, ``[...]``, characters) and runs of ``*``; every
    star but the component's last is atomic and lazy (see the module docstring)."""
    pieces: list[list[str]] = [[]]  # the fixed-length pieces between stars
    i = 0
    while i < len(part):
        char = part[i]
        if char == "*":
            while i + 1 < len(part) and part[i + 1] == "*":
                i += 1
            pieces.append([])
        elif char == "?":
            pieces[-1].append("[^/]")
        elif char == "[" and (end := part.find("]", i + 2)) != -1:
            body = part[i + 1 : end].replace("\\", "\\\\")
            if body.startswith("!"):
                body = "^" + body[1:]
            pieces[-1].append(f"(?!/)[{body}]")
            i = end
        else:
            pieces[-1].append(re.escape(char))
        i += 1
    out = ["".join(pieces[0])]
    for index, piece in enumerate(pieces[1:], start=1):
        text = "".join(piece)
        if index == len(pieces) - 1 or not text:
            out.append("[^/]*" + text)  # the last star: pinned by the component's end
        else:
            out.append(f"(?>[^/]*?{text})")
    return "".join(out)


def glob_match(pattern: str, path: str) -> bool:
    return compile_glob(pattern).fullmatch(path) is not None


def any_match(patterns: list[str], path: str) -> bool:
    return any(glob_match(p, path) for p in patterns)
