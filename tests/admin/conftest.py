"""Admin tests act as the operator (a superuser) through the real admin pages."""

import pytest
from django.test import Client

from tests.pages.conftest import public  # noqa: F401 - a fixture
from tests.pages.factory import artifact_store  # noqa: F401


@pytest.fixture
def admin(operator):
    client = Client()
    client.force_login(operator)
    return client


def form_data(response) -> dict:
    """The POST body an unchanged submit of an admin change page would send."""
    data = {}

    def add(form):
        for bf in form:
            value = bf.value()
            if value is None:
                continue
            if isinstance(value, (list, tuple)):
                data[bf.html_name] = [str(v) for v in value]
            else:
                data[bf.html_name] = str(value)

    add(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        add(formset.management_form)
        for form in formset.forms:
            add(form)
    return {k: v for k, v in data.items() if v != "False"}  # an unticked box is absent


def action(client, url: str, name: str, ids, **extra):
    return client.post(
        url,
        {"action": name, "_selected_action": [str(i) for i in ids], **extra},
        follow=True,
    )


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]
