"""Styled error pages (the site's header, a way to log in) and the admin's title."""

from django.contrib.auth.models import User
from django.template.loader import render_to_string
from django.test import Client


def test_a_404_is_a_page_of_the_site_with_a_login_link(db, client):
    r = client.get("/runs/424242")
    html = r.content.decode()
    assert r.status_code == 404 and "Not found" in html
    assert 'class="brand"' in html and 'href="/login?next=/runs/424242"' in html


def test_a_403_says_so_in_the_sites_clothes(public, make_run):
    run = make_run()
    user = User.objects.create_user("viewer")  # may see a public run, may not cancel it
    c = Client()
    c.force_login(user)
    r = c.post(f"/runs/{run.pk}/cancel")
    html = r.content.decode()
    assert r.status_code == 403 and "You may not do that" in html and 'class="brand"' in html
    assert "/login?next" not in html  # logged in already


def test_the_500_page_renders_without_a_request_or_database(db):
    html = render_to_string("500.html")
    assert "Something went wrong" in html and 'href="/login?next="' in html


def test_the_admin_is_titled_delta_ci_administration(db):
    admin = User.objects.create_superuser("root", "", "pw")
    c = Client()
    c.force_login(admin)
    html = c.get("/admin/").content.decode()
    assert "| Delta CI administration</title>" in html
    assert '<a href="/admin/">Delta CI administration</a>' in html
