"""Job resource limits (`job_spec.limits`) as a command prefix: `prlimit` and `taskset`.

Applied by exec-ing wrappers rather than a `preexec_fn` (unsafe with the
runner's threads), so the limits are in place before the job's first process.
"""

from __future__ import annotations

import math
import os
import re
import shutil
from typing import Any

DEFAULT_NPROC = 4096
# Matched on the stripped value: blanks at both ends of the pattern met in the middle when
# the unit was absent and split one run of blanks every way ("1" + 64 KiB of spaces: 10 s).
_MEMORY = re.compile(r"^(\d+(?:\.\d+)?)\s*+([KMGTP]i?|[kmgtp])?[bB]?$")
_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4, "p": 1000**5}


def parse_memory(value: Any) -> int | None:
    """'4Gi' / '512M' / '1073741824' -> bytes; None when absent or unreadable."""
    if value in (None, ""):
        return None
    match = _MEMORY.match(str(value).strip())
    if not match:
        return None
    number, unit = float(match.group(1)), (match.group(2) or "")
    if unit.endswith("i"):
        factor = 1024 ** ("KMGTP".index(unit[0].upper()) + 1)
    else:
        factor = _UNITS[unit.lower()]
    return int(number * factor) or None


def parse_cpus(value: Any) -> float | None:
    """'2' / '1.5' / '500m' -> CPUs; None when absent, unreadable or not positive."""
    if value in (None, ""):
        return None
    text = str(value).strip()
    try:
        cpus = float(text[:-1]) / 1000 if text.endswith("m") else float(text)
    except ValueError:
        return None
    return cpus if cpus > 0 and math.isfinite(cpus) else None


def parse_cpu(value: Any) -> int | None:
    """'2' / '1.5' / '500m' -> whole CPUs (rounded up); None when absent or unreadable."""
    cpus = parse_cpus(value)
    return max(1, math.ceil(cpus)) if cpus else None


def limit_prefix(limits: dict[str, Any]) -> list[str]:
    """`prlimit … -- [taskset …]`: rlimits set before the job's first process starts."""
    prlimit = shutil.which("prlimit")
    prefix: list[str] = []
    if prlimit:
        prefix = [prlimit, f"--nproc={DEFAULT_NPROC}", "--core=0"]
        memory = parse_memory(limits.get("memory"))
        if memory:
            prefix.append(f"--as={memory}")
        prefix.append("--")
    cpus = parse_cpu(limits.get("cpu"))
    taskset = shutil.which("taskset")
    available = sorted(os.sched_getaffinity(0))
    if cpus and taskset and cpus < len(available):
        prefix += [taskset, "-c", ",".join(str(c) for c in available[:cpus])]
    return prefix
