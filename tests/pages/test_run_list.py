"""The runs list: filters by repository, ref, state and trigger; paginated; invalid or
oversized filter values are reported and ignored."""

import re

from apps.runs.actions import do_add_repository
from apps.runs.models import Run
from tests.conftest import SHA


def ids(response) -> list[int]:
    return [int(x) for x in re.findall(r'<td><a href="/runs/(\d+)">', response.content.decode())]


def make(repo, n, **fields):
    base = {"trigger": "push", "ref": "refs/heads/main", "commit_sha": SHA, "state": "SUCCESS"}
    base.update(fields)
    start = Run.objects.count()
    return [
        Run.objects.create(repository=repo, event_key=f"e{start + i}", **base) for i in range(n)
    ]


def test_it_filters_by_repository_ref_state_and_trigger(public, operator, clients):
    other = do_add_repository("other", "/x.git", actor="system")
    a = make(public, 2)
    b = make(public, 1, ref="refs/heads/dev", state="FAILED")
    c = make(other, 1, trigger="manual", state="FAILED")
    get = clients["operator"].get
    assert set(ids(get("/runs"))) == {r.pk for r in a + b + c}
    assert set(ids(get("/runs", {"repo": "other"}))) == {c[0].pk}
    assert set(ids(get("/runs", {"ref": "refs/heads/dev"}))) == {b[0].pk}
    assert set(ids(get("/runs", {"state": "FAILED"}))) == {b[0].pk, c[0].pk}
    assert set(ids(get("/runs", {"trigger": "manual"}))) == {c[0].pk}
    assert ids(get("/runs", {"state": "FAILED", "repo": "demo"})) == [b[0].pk]


def test_it_pages_newest_first(public, client):
    runs = make(public, 60)
    first = ids(client.get("/runs"))
    assert first == [r.pk for r in reversed(runs)][:25]
    third = client.get("/runs", {"page": 3})
    assert ids(third) == [r.pk for r in reversed(runs)][50:]
    assert b"page 3 of 3 (60 runs)" in third.content
    assert ids(client.get("/runs", {"page": "999"})) == ids(third)
    assert ids(client.get("/runs", {"page": "-1; drop table"})) == first


def test_it_reports_and_ignores_invalid_filters(public, client):
    runs = make(public, 3)
    r = client.get("/runs", {"state": "<script>", "trigger": "x" * 10000, "ref": "r" * 300})
    assert r.status_code == 200
    assert set(ids(r)) == {x.pk for x in runs}
    html = r.content.decode()
    assert "(ignored)" in html and "<script>" not in html.split("<main>", 1)[1]


def test_it_keeps_filters_when_paging(public, client):
    make(public, 30, ref="refs/heads/x")
    make(public, 5)
    r = client.get("/runs", {"ref": "refs/heads/x"})
    assert "ref=refs%2Fheads%2Fx&amp;page=2" in r.content.decode()
