"""The runs list's filter form. Anything invalid is reported and ignored, never an error
page; a repository the user may not see is as unknown as one that does not exist."""

from typing import cast

from django import forms
from django.db.models import QuerySet

from apps.runs import access
from apps.runs.choices import RunState, Trigger
from apps.runs.models import Run


class RunFilterForm(forms.Form):
    repo = forms.ChoiceField(
        required=False,
        label="repository",
        error_messages={"invalid_choice": "no such repository (or not one you may see)"},
    )
    ref = forms.CharField(required=False, max_length=255, label="ref")
    state = forms.ChoiceField(
        required=False, label="state", choices=[("", "any state"), *RunState.choices]
    )
    trigger = forms.ChoiceField(
        required=False, label="trigger", choices=[("", "any trigger"), *Trigger.choices]
    )

    def __init__(self, *args, user=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        names = access.visible_repositories(user).order_by("name").values_list("name", flat=True)
        repo = cast(forms.ChoiceField, self.fields["repo"])  # declared above; fields are Field
        repo.choices = [("", "all repositories"), *((n, n) for n in names)]

    def apply(self, qs: QuerySet[Run]) -> QuerySet[Run]:
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        for name, lookup in (
            ("repo", "repository__name"),
            ("ref", "ref"),
            ("state", "state"),
            ("trigger", "trigger"),
        ):
            value = data.get(name)
            if value:
                qs = qs.filter(**{lookup: value})
        return qs
