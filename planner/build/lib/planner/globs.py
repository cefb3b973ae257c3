"""Path globs with ``**``, shared by ci.ai.yaml ``paths`` and workspace member lists.

Patterns are anchored at the directory they are relative to: ``*`` and ``?`` stay
inside one path component, ``**`` spans any number of components (zero included),
and a trailing ``/`` means "everything below".
"""

import re
from functools import lru_cache


@lru_cache(maxsize=4096)
def compile_glob(pattern: str) -> re.Pattern[str]:
    if pattern.endswith("/"):
        pattern += "**"
    if pattern.startswith("./"):
        pattern = pattern[2:]
    out: list[str] = []
    parts = pattern.split("/")
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if part == "**":
            out.append(".*" if last else "(?:[^/]*/)*")
            continue
        out.append(_component(part))
        if not last:
            out.append("/")
    return re.compile("".join(out), re.DOTALL)


def _component(part: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(part):
        char = part[i]
        if char == "*":
            while i + 1 < len(part) and part[i + 1] == "*":
                i += 1
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = part.find("]", i + 2)
            if end == -1:
                out.append(re.escape(char))
            else:
                body = part[i + 1 : end].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"(?!/)[{body}]")
                i = end
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


def glob_match(pattern: str, path: str) -> bool:
    return compile_glob(pattern).fullmatch(path) is not None


def any_match(patterns: list[str], path: str) -> bool:
    return any(glob_match(p, path) for p in patterns)
