import pytest

from tests.protocol.proto import Proto


@pytest.fixture
def proto(runner):
    return Proto(runner)


@pytest.fixture
def operator(db):
    from django.contrib.auth.models import User

    return User.objects.create_user("olga", password="x", is_staff=True, is_superuser=True)


@pytest.fixture
def member(repo):
    """Reads the private repository and may trigger, cancel and rerun its runs."""
    from django.contrib.auth.models import Permission, User

    user = User.objects.create_user("mia", password="x")
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["cancel_run", "rerun_run", "trigger_run"])
    )
    repo.members.add(user)
    return user


@pytest.fixture
def reader(repo):
    """Reads the private repository (through a group) but may not act on it."""
    from django.contrib.auth.models import Group, User

    user = User.objects.create_user("rita", password="x")
    group = Group.objects.create(name="readers")
    user.groups.add(group)
    repo.member_groups.add(group)
    return user


@pytest.fixture
def outsider(db):
    """Logged in, with every run permission, but no access to the private repository."""
    from django.contrib.auth.models import Permission, User

    user = User.objects.create_user("otto", password="x")
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["cancel_run", "rerun_run", "trigger_run"])
    )
    return user


def token_client(user):
    """An API client using an API token, made by create_api_token."""
    import io

    from django.core.management import call_command
    from rest_framework.test import APIClient

    out = io.StringIO()
    call_command("create_api_token", user.get_username(), stdout=out)
    key = out.getvalue().split()[-1]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@pytest.fixture
def as_user():
    return token_client
