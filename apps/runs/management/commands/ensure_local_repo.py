import subprocess
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.audit.actions import record
from apps.policies.models import Policy
from apps.runs.actions import do_add_repository
from apps.runs.choices import Visibility
from apps.runs.models import Repository


class Command(BaseCommand):
    help = "Register a local git checkout as a repository unless it is registered already."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--path", required=True)
        parser.add_argument(
            "--egress",
            choices=["none", "allowlist", "open"],
            default="open",
            help="egress for its jobs (your own checkout's jobs install packages)",
        )

    def handle(self, *args, **opts):
        path = Path(opts["path"]).resolve()
        if not (path / ".git").exists():
            raise CommandError(f"{path} is not a git checkout")
        repo = Repository.objects.filter(name=opts["name"]).first()
        if repo is None:
            repo = do_add_repository(
                opts["name"],
                str(path),
                visibility=Visibility.PUBLIC,
                actor="cli",
                default_branch=_branch(path),
            )
            Policy.objects.filter(repository=repo).update(egress_mode=opts["egress"])
            record("policy.update", actor="cli", repository=repo, egress_mode=opts["egress"])
            self.stdout.write(f"registered {repo.name} at {path}")
        self.stdout.write(str(repo.pk))


def _branch(path: Path) -> str:
    out = subprocess.run(
        ["git", "-C", str(path), "rev-parse", "--abbrev-ref", "HEAD"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return out if out and out != "HEAD" else "main"
