"""A lease id is a secret capability: returned once in LeaseGranted (and echoed only in
the answers to the runner's own messages, as protocol.md's shapes say), stored only as
its SHA-256, and never in logs, audit events or any other API answer."""

import hashlib
import json
import logging
from datetime import timedelta

from django.apps import apps

from apps.audit.models import AuditEvent
from apps.runners.models import Lease
from apps.runners.supervisor import supervise_once
from apps.runs.cancelling import do_cancel_run
from tests.conftest import job_spec
from tests.protocol.proto import Proto


def _text(value) -> str:
    if isinstance(value, bytes | memoryview):
        return bytes(value).decode("latin-1")
    return str(value)


def everything_in_the_database() -> str:
    rows = []
    for model in apps.get_models():
        for row in model.objects.all().values():
            rows.append(json.dumps(row, default=_text))
    return "\n".join(rows)


def everything_logged(caplog) -> str:
    return "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)


def test_a_lease_id_is_only_ever_in_the_grant_and_the_runners_own_answers(
    make_run, proto, runner_factory, caplog, store, admin_client, time_machine
):
    caplog.set_level(logging.DEBUG)
    time_machine.move_to("2026-01-04T08:00:00Z", tick=False)
    run = make_run([job_spec("a"), job_spec("b"), job_spec("c")])
    answers = []
    g1 = proto.take()
    lids = [g1["lease_id"]]
    answers += [proto.ack(g1["lease_id"]), proto.heartbeat(g1["lease_id"], progress={"percent": 1})]
    answers.append(proto.log(g1["lease_id"], 0, b"hello\n"))
    answers.append(proto.artifact(g1["lease_id"], "a.txt", 1))
    answers.append(proto.complete(g1["lease_id"], "FAILED", 1))
    answers.append(proto.complete(g1["lease_id"], "SUCCEEDED", 0))  # 409 INVALID_STATE
    answers.append(Proto(runner_factory("other")).heartbeat(g1["lease_id"]))  # unknown
    g2 = proto.take()
    lids.append(g2["lease_id"])
    time_machine.shift(timedelta(hours=1))
    supervise_once()  # expiry is logged and audited by prefix only
    answers.append(proto.heartbeat(g2["lease_id"]))
    g3 = proto.take()
    lids.append(g3["lease_id"])
    do_cancel_run(run, actor="user:op")
    answers.append(proto.cancel_ack(g3["lease_id"]))
    for r in answers:
        assert r.status_code < 500
    api = [admin_client.get(f"/api/v1/runs/{run.pk}"), admin_client.get("/api/v1/runs")]
    database = everything_in_the_database()
    logged = everything_logged(caplog)
    audit = str(list(AuditEvent.objects.values()))
    for lid in lids:
        digest = hashlib.sha256(lid.encode()).hexdigest()
        assert Lease.objects.filter(lease_hash=digest).exists()
        assert lid not in database and lid not in logged and lid not in audit
        assert digest not in audit and digest not in logged  # only a short prefix is
        for r in api:
            assert r.status_code == 200 and lid not in r.content.decode()
        for r in answers:
            body = r.json()
            if lid in r.content.decode():
                assert body["lease_id"] == lid and lid not in json.dumps({**body, "lease_id": ""})
        assert Lease.objects.get(lease_hash=digest).lease_prefix in audit


def test_lease_ids_are_256_bit_random_and_distinct(make_run, proto):
    make_run([job_spec(str(i)) for i in range(20)])
    ids = {proto.take()["lease_id"] for _ in range(20)}
    assert len(ids) == 20
    assert all(len(i) >= 43 for i in ids)  # token_urlsafe(32): 256 bits
