"""Artifacts are downloads, never pages: an attachment of an opaque type with nosniff and
a sandboxing CSP, whatever the runner claimed, with a file name safe for headers."""

import pytest
from django.utils import timezone

from apps.artifacts import storage
from apps.artifacts.models import Artifact
from apps.artifacts.views import download_name
from tests.pages.factory import run_attempt

HTML = b"<html><script>alert(document.cookie)</script></html>"


@pytest.fixture
def files(public, make_run, runner, artifact_store):
    make_run()
    g = run_attempt(runner, files={"report.html": HTML, "notes.txt": b"hello"})
    return {a.name: a for a in Artifact.objects.filter(attempt_id=g["attempt_id"])}


def test_it_serves_html_as_an_opaque_attachment(files, client):
    art = files["report.html"]
    Artifact.objects.filter(pk=art.pk).update(content_type="text/html")  # what a runner claims
    r = client.get(f"/artifacts/{art.pk}/download")
    assert r.status_code == 200
    assert b"".join(r.streaming_content) == HTML
    assert r["Content-Type"] == "application/octet-stream"
    assert r["Content-Disposition"] == 'attachment; filename="report.html"'
    assert r["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in r["Content-Security-Policy"]


def test_it_links_every_recorded_artifact_from_the_run_page(files, client):
    html = client.get(f"/runs/{files['notes.txt'].attempt.run_id}").content.decode()
    for name in ("report.html", "notes.txt"):
        assert f'href="/artifacts/{files[name].pk}/download"' in html


def test_it_answers_gone_for_an_artifact_deleted_by_retention(files, client):
    art = files["notes.txt"]
    storage.delete(art.key)
    Artifact.objects.filter(pk=art.pk).update(deleted_at=timezone.now())
    r = client.get(f"/artifacts/{art.pk}/download")
    assert r.status_code == 410 and b"retention" in r.content


def test_it_404s_an_object_missing_from_the_store(files, client):
    art = files["notes.txt"]
    storage.delete(art.key)
    assert client.get(f"/artifacts/{art.pk}/download").status_code == 404


def test_it_404s_an_artifact_the_runner_never_recorded(files, client):
    art = files["notes.txt"]
    Artifact.objects.filter(pk=art.pk).update(recorded=False)
    assert client.get(f"/artifacts/{art.pk}/download").status_code == 404


def test_it_refuses_other_methods(files, client):
    assert client.post(f"/artifacts/{files['notes.txt'].pk}/download").status_code == 405


@pytest.mark.parametrize(
    "name, safe",
    [
        ("report.html", "report.html"),
        ("../../etc/passwd", "passwd"),
        ('a"; filename="evil.html', "a_filename_evil.html"),
        ("dir\\sub\\x.txt", "x.txt"),
        ("line\r\nSet-Cookie: x=1", "line_Set-Cookie_x_1"),
        ("ünïcødé.txt", "n_c_d_.txt"),
        ("...", "artifact"),
        ("", "artifact"),
        ("a" * 500 + ".txt", "a" * 150),
    ],
)
def test_it_makes_download_names_safe(name, safe):
    assert download_name(name) == safe
