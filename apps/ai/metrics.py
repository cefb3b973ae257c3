"""AI requests counted for /metrics (the scrape reads the process registry, or the
multiprocess directory under gunicorn)."""

from prometheus_client import Counter

REQUESTS = Counter(
    "deltaci_ai_analyses",
    "Failure analyses by outcome (ok, cached, error, timeout, rate_limited, invalid_answer, "
    "circuit_open, daily_limit, refused).",
    ["outcome"],
)
BYTES_SENT = Counter("deltaci_ai_bytes_sent", "Bytes of redacted input sent to the AI provider.")
