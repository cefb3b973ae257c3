"""What leaves the building is redacted first: the run's secret values, anything shaped
like a credential, e-mail addresses and internal host names. Pure functions, so the rules
are tested on their own and applied to every byte that is sent. Every repetition in the
patterns is bounded (names, labels, separators as long as real ones get): an unbounded
one tried at every word boundary of a long hostile line is quadratic."""

import base64
import re
from collections.abc import Iterable

_RULES: list[tuple[re.Pattern[str], str]] = [
    # Private keys (PEM blocks, whole, including an unterminated one at the end of a log).
    (
        re.compile(
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)",
            re.S,
        ),
        "[REDACTED PRIVATE KEY]",
    ),
    # Authorization and cookie headers: everything after the header name.
    (
        re.compile(r"(?im)^(\s*(?:proxy-)?authorization\s*[:=]\s*).+$"),
        r"\1[REDACTED]",
    ),
    (re.compile(r"(?i)\b(authorization\s*[:=]\s*)(?:bearer|basic|token)\s+\S+"), r"\1[REDACTED]"),
    (re.compile(r"(?im)^(\s*(?:set-)?cookie\s*:\s*).+$"), r"\1[REDACTED]"),
    # GitHub tokens (classic and fine-grained), Slack, GitLab, npm, PyPI.
    (re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})"), "[REDACTED]"),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), "[REDACTED]"),
    (re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}"), "[REDACTED]"),
    (re.compile(r"\bnpm_[A-Za-z0-9]{30,}"), "[REDACTED]"),
    (re.compile(r"\bpypi-[A-Za-z0-9_-]{40,}"), "[REDACTED]"),
    # AWS access key ids, and secret keys written as assignments.
    (re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b"), "[REDACTED]"),
    # JSON Web Tokens.
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), "[REDACTED]"),
    # key=value / key: value where the key names a credential.
    (
        re.compile(
            r"(?i)\b([A-Za-z0-9_.-]{0,64}(?:password|passwd|pwd|secret|token|api[_-]?key|"
            r"access[_-]?key|private[_-]?key|credentials?)[A-Za-z0-9_.-]{0,64}"
            r"[\"']?[ \t]{0,16}[:=][ \t]{0,16})([\"']?)[^\s\"',;&]+"
        ),
        r"\1\2[REDACTED]",
    ),
    # Credentials inside URLs: scheme://user:password@host.
    (
        re.compile(r"(?i)\b([a-z][a-z0-9+.-]{0,31}://)[^/\s:@]{1,256}:[^/\s@]{1,256}@"),
        r"\1[REDACTED]@",
    ),
    # E-mail addresses.
    (re.compile(r"\b[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}\b"), "[email]"),
]

# Host names under these suffixes are internal; so are private and link-local addresses.
INTERNAL_SUFFIXES = (
    "internal",
    "local",
    "localdomain",
    "lan",
    "corp",
    "intranet",
    "intra",
    "private",
    "home.arpa",
    "svc.cluster.local",
)
_PRIVATE_IP = re.compile(
    r"\b(?:10\.\d{1,3}|172\.(?:1[6-9]|2\d|3[01])|192\.168|169\.254)\.\d{1,3}\.\d{1,3}\b"
)


def _host_rule(extra_suffixes: Iterable[str]) -> re.Pattern[str]:
    suffixes = sorted(
        {s.strip(".").lower() for s in (*INTERNAL_SUFFIXES, *extra_suffixes) if s.strip(".")},
        key=len,
        reverse=True,
    )
    alternatives = "|".join(re.escape(s) for s in suffixes)
    label = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
    return re.compile(rf"(?i)\b(?:{label}\.){{1,16}}(?:{alternatives})\b")


def _secret_variants(value: str) -> set[str]:
    """A secret as written, and as the encodings a build most often prints it in."""
    variants = {value}
    raw = value.encode("utf-8", "replace")
    variants.add(base64.b64encode(raw).decode().rstrip("="))
    variants.add(base64.urlsafe_b64encode(raw).decode().rstrip("="))
    return {v for v in variants if len(v) >= 4}


def redact(text: str, *, secrets: Iterable[str] = (), internal_suffixes: Iterable[str] = ()) -> str:
    """`text` with every secret value (longest first, so one containing another goes
    whole) and every credential-, e-mail- and internal-host-shaped string replaced."""
    for value in sorted(
        {v for s in secrets if s for v in _secret_variants(s)}, key=len, reverse=True
    ):
        text = text.replace(value, "[REDACTED SECRET]")
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    text = _host_rule(internal_suffixes).sub("[internal host]", text)
    return _PRIVATE_IP.sub("[internal address]", text)
