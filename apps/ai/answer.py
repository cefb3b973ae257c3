"""The provider's answer is untrusted too: only JSON of the fixed shape is kept, and
links that were not in what we sent are removed."""

import json
import re
from dataclasses import dataclass

MAX_CONTENT_CHARS = 16_000
MAX_TEXT = 1_000
MAX_STEP = 400
MAX_STEPS = 6
CONFIDENCE = ("low", "medium", "high")
KEYS = {"summary", "likely_cause", "next_steps", "confidence"}
_URL = re.compile(r"(?i)\b(?:https?://|ftp://|www\.)[^\s<>\"')\]]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]")


class InvalidAnswer(ValueError):
    """The answer is not what we asked for; it is discarded whole."""


@dataclass(frozen=True)
class Suggestion:
    summary: str
    likely_cause: str
    next_steps: list[str]
    confidence: str


def _text(value: object, limit: int, name: str, sent: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidAnswer(f"{name} must be a non-empty string")
    value = _CONTROL.sub("", value).strip()
    if len(value) > limit:
        raise InvalidAnswer(f"{name} is longer than {limit} characters")
    return _URL.sub(lambda m: m.group(0) if m.group(0) in sent else "[link removed]", value)


def _confidence(value: object) -> str:
    if isinstance(value, str) and value.strip().lower() in CONFIDENCE:
        return value.strip().lower()
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1:
        return "low" if value < 0.4 else "medium" if value < 0.75 else "high"
    raise InvalidAnswer("confidence must be low, medium or high")


def _unfence(content: str) -> str:
    """The JSON inside a ```json fence, when the model wrapped its answer in one. Done
    with string operations: as one regex (blanks, a lazy body, blanks before the closing
    fence) an opening fence followed by blanks was cubic, 0.3 s for 1,000 characters and
    many minutes for the 16,000 allowed."""
    text = content.strip()
    if len(text) < 6 or not text.startswith("```") or not text.endswith("```"):
        return content
    body = text[3:-3]
    return body.removeprefix("json").strip()


def parse_answer(content: object, *, sent: str) -> Suggestion:
    """`content` is the assistant message; `sent` is what we sent (links found there
    may stay)."""
    if not isinstance(content, str) or len(content) > MAX_CONTENT_CHARS:
        raise InvalidAnswer("the answer is not text of a sensible size")
    content = _unfence(content)
    try:
        data = json.loads(content)
    except (ValueError, RecursionError) as exc:
        raise InvalidAnswer("the answer is not JSON") from exc
    if not isinstance(data, dict) or set(data) != KEYS:
        raise InvalidAnswer(f"the answer must have exactly the keys {sorted(KEYS)}")
    steps = data["next_steps"]
    if not isinstance(steps, list) or not 1 <= len(steps) <= MAX_STEPS:
        raise InvalidAnswer(f"next_steps must be a list of 1 to {MAX_STEPS} strings")
    return Suggestion(
        summary=_text(data["summary"], MAX_TEXT, "summary", sent),
        likely_cause=_text(data["likely_cause"], MAX_TEXT, "likely_cause", sent),
        next_steps=[_text(s, MAX_STEP, "next_steps[]", sent) for s in steps],
        confidence=_confidence(data["confidence"]),
    )
