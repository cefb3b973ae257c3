"""One rule for "is this lease live?": the Python predicate (leasing.expiry_reason), the
query filters (leasing.live_now, leasing.expired_by) and, on PostgreSQL, the heartbeat's
renewal statement agree on every combination of state, TTL and ack deadline; and the
raw statements agree with the ORM for renewal, claim and the live-lease count."""

import itertools
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from apps.runners import claimsql, heartbeats, leasing, statements
from apps.runners.models import Lease
from apps.runs.choices import LEASE_LIVE, LeaseState
from apps.runs.models import JobAttempt
from lib.db import fetch_prepared
from lib.logging import scope as log_scope
from tests.conftest import job_spec
from tests.protocol.proto import Proto

STATES = list(LeaseState.values)
WHEN = {"past": -timedelta(seconds=1), "now": timedelta(0), "future": timedelta(seconds=60)}
CASES = list(itertools.product(STATES, WHEN, WHEN))


def renews_in_sql(lease: Lease, runner, now) -> bool:
    """Would the heartbeat's one statement renew this lease? (Rolled back either way.)"""
    with transaction.atomic():
        params = statements.renew_params(now, lease.lease_hash, runner.pk, None)
        rows = fetch_prepared(statements.RENEW, params)
        transaction.set_rollback(True)
    return bool(rows)


@pytest.mark.django_db
def test_python_and_the_queries_agree_on_every_combination(make_run, proto, runner):
    make_run()
    proto.take()
    pk = Lease.objects.get().pk
    now = timezone.now()
    for state, ttl, ack in CASES:
        Lease.objects.filter(pk=pk).update(
            state=state, expires_at=now + WHEN[ttl], ack_deadline=now + WHEN[ack]
        )
        lease = Lease.objects.get(pk=pk)
        live = state in LEASE_LIVE and leasing.expiry_reason(lease, now) is None
        case = (state, ttl, ack)
        assert Lease.objects.filter(leasing.live_now(now), pk=pk).exists() == live, case
        expired = state in LEASE_LIVE and not live
        assert Lease.objects.filter(leasing.expired_by(now), pk=pk).exists() == expired, case
        assert (leasing.stale_reason(lease, now) is None) == live, case
        if connection.vendor == "postgresql":
            assert renews_in_sql(lease, runner, now) == live, case


@pytest.mark.django_db
def test_the_live_lease_count_is_the_orm_count(make_run, runner_factory):
    make_run([job_spec(f"j{i}") for i in range(len(STATES))])
    for i in range(len(STATES)):
        Proto(runner_factory(f"r{i}")).take()
    for lease, state in zip(Lease.objects.order_by("pk"), STATES, strict=True):
        Lease.objects.filter(pk=lease.pk).update(state=state)
    assert leasing.count_live() == Lease.objects.filter(state__in=LEASE_LIVE).count() == 2


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_raw_claim_picks_what_the_orm_path_would(make_run, runner):
    make_run([job_spec("a"), job_spec("b"), job_spec("c", runs_on=["gpu"])])
    make_run([job_spec("d")])
    taken = []
    for _ in range(4):
        with transaction.atomic():
            caps = sorted(runner.capabilities)
            raw = claimsql.lock_next(runner.environment, caps, set(taken), set(), set())
            orm = (
                JobAttempt.objects.filter(state="QUEUED", run__repository__environment="dev")
                .exclude(pk__in=taken)
                .order_by("run_created_at", "id")
            )
            eligible = [a for a in orm if set(a.job.spec.get("runs_on") or []) <= set(caps)]
            assert (raw.pk if raw else None) == (eligible[0].pk if eligible else None)
            if raw is None:
                break
            assert raw.job.name == eligible[0].job.name and raw.run.repository.name == "demo"
            taken.append(raw.pk)
    assert len(taken) == 3  # "c" needs a gpu


@pytest.mark.postgres
@pytest.mark.django_db
def test_raw_and_orm_renewals_agree(make_run, runner, proto, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    make_run([job_spec("a"), job_spec("b")])
    fast, slow = proto.start(), proto.start()
    time_machine.shift(timedelta(seconds=7))
    with log_scope():  # as a request would: the lease's run and job are bound for its logs
        raw = heartbeats.heartbeat(runner, fast["lease_id"], {"percent": 50})
        orm = heartbeats._heartbeat_orm(runner, slow["lease_id"], {"percent": 50})
    assert {k: v for k, v in raw.items() if k != "lease_id"} == {
        k: v for k, v in orm.items() if k != "lease_id"
    }
    a, b = Lease.objects.order_by("pk")
    assert (a.expires_at, a.last_heartbeat_at) == (b.expires_at, b.last_heartbeat_at)
    assert [x.progress for x in JobAttempt.objects.order_by("pk")] == [{"percent": 50}] * 2
