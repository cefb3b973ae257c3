"""What an operator changed in a policy, for the audit log: every edit, wherever it is
made in admin (inline on the repository or on the Policies page), records each changed
field with its value before and after."""

from typing import Any

from django import forms

from apps.audit.actions import record


def _plain(value: Any) -> Any:
    """A value as JSON can hold it (model instances and other objects by their text)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)


def changes(form: forms.ModelForm) -> dict[str, dict[str, Any]]:
    """Changed fields, from and to (a JSON list typed anew but equal is no change)."""
    pairs = {
        name: (_plain(form.initial.get(name)), _plain(form.cleaned_data.get(name)))
        for name in form.changed_data
    }
    return {name: {"from": old, "to": new} for name, (old, new) in pairs.items() if old != new}


def record_policy_edit(form: forms.ModelForm, repository: Any, *, actor: str) -> None:
    """One `policy.update` event for a saved policy form that changed anything."""
    changed = changes(form)
    if changed:
        record(
            "policy.update",
            actor=actor,
            repository=repository,
            target=getattr(repository, "name", ""),
            changed=changed,
        )
