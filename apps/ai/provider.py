"""The one provider: an OpenAI-compatible chat-completions endpoint (hosted services,
vLLM, llama.cpp's server, Ollama). One POST, bounded in time and size, no redirects."""

import json
from dataclasses import dataclass

import requests

from apps.ai.answer import InvalidAnswer, Suggestion, parse_answer
from apps.ai.models import Outcome
from apps.ai.prompt import Request

MAX_RESPONSE_BYTES = 256 * 1024


@dataclass(frozen=True)
class ProviderConfig:
    url: str
    api_key: str
    model: str
    timeout: float


@dataclass(frozen=True)
class Reply:
    outcome: str
    suggestion: Suggestion | None = None
    detail: str = ""  # for logs: never the content


def endpoint(url: str) -> str:
    """`DELTACI_AI_URL` is the API base (…/v1) or the full chat-completions URL."""
    url = url.rstrip("/")
    return url if url.endswith("/chat/completions") else f"{url}/chat/completions"


def _read_limited(response: requests.Response) -> bytes:
    data = b""
    for chunk in response.iter_content(8192):
        data += chunk
        if len(data) > MAX_RESPONSE_BYTES:
            raise InvalidAnswer("the response is larger than we accept")
    return data


def ask(config: ProviderConfig, request: Request) -> Reply:
    body = {
        "model": config.model,
        "messages": request.messages,
        "temperature": 0,
        "max_tokens": 800,
        "response_format": {"type": "json_object"},
    }
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if config.api_key:
        headers["Authorization"] = f"Bearer {config.api_key}"
    try:
        with requests.post(
            endpoint(config.url),
            json=body,
            headers=headers,
            timeout=config.timeout,
            allow_redirects=False,
            stream=True,
        ) as response:
            if response.status_code == 429:
                return Reply(Outcome.RATE_LIMITED, detail="HTTP 429")
            if response.status_code != 200:
                return Reply(Outcome.ERROR, detail=f"HTTP {response.status_code}")
            raw = _read_limited(response)
    except requests.Timeout:
        return Reply(Outcome.TIMEOUT, detail=f"no answer within {config.timeout:g} s")
    except InvalidAnswer as exc:
        return Reply(Outcome.INVALID_ANSWER, detail=str(exc))
    except requests.RequestException as exc:
        return Reply(Outcome.ERROR, detail=type(exc).__name__)
    try:
        data = json.loads(raw)
        content = data["choices"][0]["message"]["content"]
    except (ValueError, RecursionError, KeyError, IndexError, TypeError):
        return Reply(Outcome.INVALID_ANSWER, detail="not a chat-completions response")
    try:
        return Reply(Outcome.OK, parse_answer(content, sent=request.redacted_text))
    except InvalidAnswer as exc:
        return Reply(Outcome.INVALID_ANSWER, detail=str(exc))
