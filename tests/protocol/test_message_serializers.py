"""Runner message serializers share one prototype of their fields per class: no state may
leak from one message to the next, nor between threads."""

import threading

from apps.runners.api import serializers as s


def _validate(cls, data: dict):
    ser = cls(data=data)
    return ser.is_valid(), (ser.validated_data if ser.is_valid() else ser.errors)


def test_an_invalid_message_leaves_nothing_behind_for_the_next_one() -> None:
    ok, errors = _validate(
        s.HeartbeatSerializer,
        {"type": "Heartbeat", "lease_id": "x" * 201, "progress": {"percent": 101}},
    )
    assert not ok
    assert set(errors) == {"lease_id", "progress"}
    assert set(errors["progress"]) == {"percent"}

    ok, data = _validate(
        s.HeartbeatSerializer,
        {"type": "Heartbeat", "lease_id": "abc", "progress": {"percent": 50, "step_index": 1}},
    )
    assert ok, data
    assert data["lease_id"] == "abc"
    assert data["progress"] == {"percent": 50.0, "step_index": 1}


def test_each_message_type_keeps_its_own_fields() -> None:
    ok, errors = _validate(s.AckSerializer, {"type": "Heartbeat", "lease_id": "l"})
    assert not ok and "type" in errors
    ok, _ = _validate(s.HeartbeatSerializer, {"type": "Heartbeat", "lease_id": "l"})
    assert ok
    ok, errors = _validate(s.CompleteSerializer, {"lease_id": "l", "status": "MAYBE"})
    assert not ok and set(errors) == {"status"}


def test_a_nested_list_is_validated_per_message() -> None:
    ok, errors = _validate(
        s.CompleteSerializer,
        {"lease_id": "l", "status": "FAILED", "artifacts": [{"uri": "a"}, {"type": "nope"}]},
    )
    assert not ok and "artifacts" in errors
    ok, data = _validate(
        s.CompleteSerializer,
        {"lease_id": "l", "status": "FAILED", "artifacts": [{"uri": "a", "type": "junit"}]},
    )
    assert ok, data
    assert [dict(a) for a in data["artifacts"]] == [{"uri": "a", "type": "junit"}]


def test_threads_validating_at_once_each_get_their_own_answer() -> None:
    failures: list[str] = []
    start = threading.Barrier(8)

    def work(n: int) -> None:
        start.wait(timeout=10)
        for i in range(300):
            good = (i + n) % 2 == 0
            lease = f"lease-{n}-{i}"
            body = {"type": "Heartbeat", "lease_id": lease if good else "x" * 300}
            body["progress"] = {"percent": n, "current_step": f"s{i}"}
            ok, out = _validate(s.HeartbeatSerializer, body)
            if ok != good:
                failures.append(f"{n}/{i}: {ok} {out}")
            elif ok and (out["lease_id"] != lease or out["progress"]["current_step"] != f"s{i}"):
                failures.append(f"{n}/{i}: crossed with another message: {out}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert failures == []
