"""Each named actor (tests/conftest.py) as a logged-in browser client, plus an anonymous
visitor."""

import pytest
from django.test import Client

from tests.pages.factory import artifact_store  # noqa: F401 - a fixture


def _client(user=None, **kwargs) -> Client:
    client = Client(**kwargs)
    if user is not None:
        client.force_login(user)
    return client


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
