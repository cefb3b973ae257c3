"""lib/logging.py: one JSON object per line, context fields, and capabilities redacted
wherever they turn up (message, extra fields, exception text, gunicorn access atoms)."""

import json
import logging

from celery import shared_task

from lib import logging as jlog
from lib.tokens import new_token, short_hash


def fmt(msg="hello", *args, name="t", exc_info=None, **extra) -> dict:
    record = logging.LogRecord(name, logging.INFO, __file__, 1, msg, args, exc_info)
    for k, v in extra.items():
        setattr(record, k, v)
    line = jlog.JsonFormatter().format(record)
    assert "\n" not in line
    return json.loads(line)


def test_it_writes_one_json_object_with_the_bound_context():
    with jlog.scope(run_id=7):
        token = jlog.bind(job_id=9, lease="abc123def456", ignored=None)
        out = fmt("step %s", "one", attempt=3)
        jlog.unbind(token)
        assert "job_id" not in fmt()
    assert out["msg"] == "step one" and out["level"] == "INFO" and out["ts"].endswith("Z")
    assert (out["run_id"], out["job_id"], out["lease"], out["attempt"]) == (
        7,
        9,
        "abc123def456",
        3,
    )
    assert "ignored" not in out and "run_id" not in fmt()


def test_it_replaces_tokens_anywhere_by_their_hash_prefix():
    token = new_token()
    out = fmt(f"lease {token} expired", detail={"note": f"x {token}"}, items=[token])
    text = json.dumps(out)
    assert token not in text
    assert f"[redacted:{short_hash(token)}]" in out["msg"]


def test_it_redacts_sensitive_keys_bearer_headers_urls_and_upload_paths():
    out = fmt(
        "GET /api/v1/artifacts/upload/eyJrIjoiYSJ9:1tX:sig?x=1 Authorization: Bearer abc.def",
        headers={"Authorization": "Bearer short", "X-Delta-Lease": "short"},
        lease_id="short-lease",
        url="postgres://deltaci:hunter2@db:5432/deltaci",
        body={"secrets": {"K": "v"}, "nested": [{"token": "t0k"}]},
    )
    text = json.dumps(out)
    for leaked in ("eyJrIjoiYSJ9", "abc.def", "short", "hunter2", '"v"', "t0k"):
        assert leaked not in text, leaked
    assert "/artifacts/upload/[redacted]" in out["msg"]
    assert out["url"] == "postgres://deltaci:[redacted]@db:5432/deltaci"


def test_it_redacts_exception_text():
    token = new_token()
    try:
        raise ValueError(f"bad lease {token}")
    except ValueError:
        import sys

        out = fmt("boom", exc_info=sys.exc_info())
    assert token not in out["exc"] and "ValueError" in out["exc"]


def test_it_turns_gunicorn_access_atoms_into_fields_without_the_query():
    atoms = {
        "m": "PUT",
        "U": "/api/v1/artifacts/upload/signed-token-value",
        "q": "signature=abc",
        "s": "200",
        "B": 12,
        "M": 3,
        "h": "10.0.0.1",
        "a": "runner/1.0",
    }
    record = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, "%(m)s", (), None)
    record.args = atoms
    out = json.loads(jlog.JsonFormatter().format(record))
    assert out["method"] == "PUT" and out["status"] == "200" and out["duration_ms"] == 3
    assert out["path"] == "/api/v1/artifacts/upload/[redacted]"
    assert "signature=abc" not in json.dumps(out)


@shared_task(name="tests.ops.log_in_task")
def log_in_task(run_id: int, job_id: int | None = None) -> None:
    logging.getLogger("tests.ops.task").info("inside the task")


def test_celery_tasks_log_with_their_name_and_ids(caplog):
    caplog.handler.setFormatter(jlog.JsonFormatter())
    with caplog.at_level(logging.INFO, logger="tests.ops.task"):
        log_in_task.apply(args=(41,), kwargs={"job_id": 42})
    lines = [json.loads(ln) for ln in caplog.text.splitlines() if "inside the task" in ln]
    assert len(lines) == 1
    line = lines[0]
    assert (line["task"], line["run_id"], line["job_id"]) == ("tests.ops.log_in_task", 41, 42)
    assert line["task_id"]
    assert "run_id" not in jlog.current()


def test_a_hostile_line_is_redacted_in_linear_time():
    # Unbounded scheme and user name were scanned from every word boundary: 8 s for this.
    out = fmt("a." * 32_768 + " https://u:pw@host/x")
    assert out["msg"].endswith(" https://u:[redacted]@host/x")
