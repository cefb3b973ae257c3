"""Credentials for reading a repository from GitHub (the mirror's fetches, and the
short-lived clone token runners get in LeaseGranted)."""

from django.conf import settings


def clone_token_for(repository) -> str:
    """A token that can read `repository`, or "" for public or local repositories."""
    if not getattr(repository, "github_full_name", ""):
        return ""
    return settings.GITHUB_TOKEN


def runner_clone_token(repository) -> str:
    """A short-lived read-only token for a runner's clone, never a long-lived credential.
    Only a GitHub App can mint one; with a personal token runners get none."""
    return ""
