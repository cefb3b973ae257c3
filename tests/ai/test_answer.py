"""apps/ai/answer.py: the model's reply, fenced or not, read as the four keys."""

import json

import pytest

from apps.ai.answer import InvalidAnswer, parse_answer

ANSWER = {
    "summary": "the build failed",
    "likely_cause": "a missing module",
    "next_steps": ["install it"],
    "confidence": "high",
}


@pytest.mark.parametrize(
    "wrap",
    ["{}", "```json\n{}\n```", "  ```\n{}```\n", "```json{}```", "\n```JSON\n{}\n```"],
    ids=["bare", "json-fence", "plain-fence", "tight-fence", "upper-case-tag"],
)
def test_it_reads_a_bare_or_fenced_answer(wrap):
    content = wrap.replace("{}", json.dumps(ANSWER))
    if "JSON" in wrap:  # the tag is "json" only; anything else stays and is not JSON
        with pytest.raises(InvalidAnswer, match="not JSON"):
            parse_answer(content, sent="")
        return
    assert parse_answer(content, sent="").summary == "the build failed"


@pytest.mark.parametrize(
    "content",
    ["```" + " " * 15_990, "```json" + "\n" * 15_990 + "x", "```" + " ```" * 3_990 + "x"],
    ids=["fence-then-blanks", "fence-then-newlines", "fences-not-closing"],
)
def test_a_hostile_fence_is_rejected_quickly(content):
    # As a regex the fence was cubic here: 0.3 s at 1,000 characters, minutes at 16,000.
    with pytest.raises(InvalidAnswer, match="not JSON"):
        parse_answer(content, sent="")
