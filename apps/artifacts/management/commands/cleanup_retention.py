"""`manage.py cleanup_retention [--dry-run] [--repo NAME]`: delete logs and artifacts
older than each repository's retention policy; prints what it deleted (or would)."""

from django.core.management.base import BaseCommand, CommandError

from apps.artifacts.retention import cleanup
from apps.runs.models import Repository


class Command(BaseCommand):
    help = "Delete logs and artifacts past their repository's retention policy."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="count what would be deleted, delete nothing"
        )
        parser.add_argument("--repo", metavar="NAME", help="only this repository")

    def handle(self, *args, dry_run: bool = False, repo: str | None = None, **options) -> None:
        repositories = None
        if repo is not None:
            found = Repository.objects.filter(name=repo[:200]).first()
            if found is None:
                raise CommandError(f"no repository named {repo[:200]!r}")
            repositories = [found]
        report = cleanup(repositories=repositories, dry_run=dry_run, actor="manage.py")
        for line in report.lines():
            self.stdout.write(line)
