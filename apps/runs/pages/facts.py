"""What people look for on a run page besides the jobs: the commit (message, author),
links to it, its pull request and the compare view on GitHub (or the repository's own
URL), the artifacts of every job in one list, and per job its queue and run time."""

from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote

from django.conf import settings

from apps.runs.models import Repository, Run


@dataclass
class Links:
    commit: str = ""
    pull: str = ""
    compare: str = ""
    repository: str = ""


def github_web_url() -> str:
    """github.com, or a GitHub Enterprise Server's web address (its API is /api/v3)."""
    api = settings.GITHUB_API_URL
    if api == "https://api.github.com":
        return "https://github.com"
    return api.removesuffix("/api/v3")


def links(run: Run, base: str) -> Links:
    repo: Repository = run.repository
    if repo.github_full_name:
        web = f"{github_web_url()}/{quote(repo.github_full_name, safe='/')}"
        sha = quote(run.commit_sha, safe="")
        return Links(
            commit=f"{web}/commit/{sha}",
            pull=f"{web}/pull/{run.pr_number}" if run.pr_number else "",
            compare=f"{web}/compare/{quote(base, safe='')}...{sha}" if base else "",
            repository=web,
        )
    url = repo.url if repo.url.startswith(("https://", "http://")) else ""
    return Links(repository=url)


def queue_time(attempts: list) -> timedelta | None:
    """From the first attempt's queueing to its start on a runner."""
    first = attempts[0] if attempts else None
    if first is None or first.queued_at is None:
        return None
    start = first.started_at or first.leased_at
    return (start - first.queued_at) if start else None
