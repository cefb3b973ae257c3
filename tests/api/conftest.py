"""The run API is used with DRF token keys, made the way an operator makes them."""

import pytest


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
