"""Who may read a repository's runs, logs and artifacts, and who may act on them.
Public repositories are readable by anyone; private ones by staff and by users or
groups granted access in admin. Pages and the API both ask here."""

from django.db.models import Q, QuerySet

from apps.runs.choices import Visibility
from apps.runs.models import Repository, Run


def visible_repositories(user) -> QuerySet[Repository]:
    qs = Repository.objects.all()
    if user is not None and user.is_authenticated and (user.is_staff or user.is_superuser):
        return qs
    rule = Q(visibility=Visibility.PUBLIC)
    if user is not None and user.is_authenticated:
        rule |= Q(members=user) | Q(member_groups__in=user.groups.all())
    return qs.filter(rule).distinct()


def visible_runs(user) -> QuerySet[Run]:
    return Run.objects.filter(repository__in=visible_repositories(user).values("pk"))


def can_read(user, repository: Repository) -> bool:
    return visible_repositories(user).filter(pk=repository.pk).exists()


def can_act(user, repository: Repository, perm: str) -> bool:
    """`perm` is one of trigger_run, cancel_run, rerun_run."""
    if user is None or not user.is_authenticated:
        return False
    return user.has_perm(f"runs.{perm}") and can_read(user, repository)
