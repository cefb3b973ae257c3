import re

from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError

from apps.runs.actions import RunError, do_add_repository
from apps.runs.choices import Environment, Visibility

_SLUG = re.compile(r"[A-Za-z0-9_-]+")


class Command(BaseCommand):
    help = "Register a repository (a clone URL or a local git path) with a default policy."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--url", required=True, help="clone URL or local path")
        parser.add_argument("--default-branch", default="main")
        parser.add_argument("--visibility", choices=Visibility.values, default=Visibility.PRIVATE)
        parser.add_argument("--environment", choices=Environment.values, default=Environment.DEV)
        parser.add_argument("--github", default="", help="owner/name on GitHub, for webhooks")

    def handle(self, *args, **opts):
        name = opts["name"]
        if not name or len(name) > 100 or not _SLUG.fullmatch(name):
            raise CommandError(f"invalid name {name!r}: 1-100 letters, digits, '-' and '_'")
        if len(opts["url"]) > 500 or not opts["url"].strip():
            raise CommandError("--url must be a non-empty URL or path of at most 500 characters")
        try:
            repo = do_add_repository(
                name,
                opts["url"],
                default_branch=opts["default_branch"],
                visibility=opts["visibility"],
                environment=opts["environment"],
                github_full_name=opts["github"],
                actor="cli",
            )
        except IntegrityError:
            raise CommandError(f"repository {name!r} already exists") from None
        except RunError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"added repository {repo.name} (id {repo.pk})")
        self.stdout.write(str(repo.pk))
