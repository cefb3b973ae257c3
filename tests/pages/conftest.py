"""Named actors built once per test: an operator (staff), a member of the repository
with run permissions, an outsider (logged in, no access) and an anonymous visitor."""

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from tests.pages.factory import artifact_store  # noqa: F401 - a fixture


def _client(user=None, **kwargs) -> Client:
    client = Client(**kwargs)
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def operator(db):
    return User.objects.create_user("olga", is_staff=True, is_superuser=True)


@pytest.fixture
def member(repo):
    user = User.objects.create_user("mia")
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["cancel_run", "rerun_run", "trigger_run"])
    )
    repo.members.add(user)
    return user


@pytest.fixture
def outsider(db):
    user = User.objects.create_user("otto")
    user.user_permissions.add(*Permission.objects.filter(codename__in=["cancel_run", "rerun_run"]))
    return user


@pytest.fixture
def clients(operator, member, outsider):
    return {
        "operator": _client(operator),
        "member": _client(member),
        "outsider": _client(outsider),
        "anonymous": _client(),
    }


@pytest.fixture
def public(repo):
    repo.visibility = "public"
    repo.save(update_fields=["visibility"])
    return repo
