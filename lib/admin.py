"""The admin base for rows that only the code writes (state machines, audit, leases,
webhook deliveries): operators may look, filter and run explicit actions, never edit."""

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.db.models import Model
from django.http import HttpRequest

if TYPE_CHECKING:  # generic in the stubs only
    _ModelAdmin = admin.ModelAdmin[Any]
else:
    _ModelAdmin = admin.ModelAdmin


class ReadOnlyAdmin(_ModelAdmin):
    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


def adopt_created(obj: Model, row: Model) -> None:
    """Make the admin's unsaved `obj` the row an action created instead of save(), so
    the admin's log entry and redirect point at it."""
    for field in row._meta.concrete_fields:
        setattr(obj, field.attname, getattr(row, field.attname))
    obj._state.adding = False


def show_token_once(model_admin: _ModelAdmin, request: HttpRequest, what: str, token: str) -> None:
    """The one time a new token is displayed: in the message after the save."""
    model_admin.message_user(
        request,
        f"{what}: {token} — copy it now. It is stored only as a hash and will not be shown again.",
        messages.WARNING,
    )
