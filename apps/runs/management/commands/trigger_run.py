from django.core.management.base import BaseCommand, CommandError

from apps.runs.actions import do_create_run
from apps.runs.choices import Trigger
from apps.runs.models import Repository
from apps.runs.planning import sync_mirror
from lib import gitmirror


class Command(BaseCommand):
    help = "Start a run of REPO at REF (the commit it names now, or --sha). Prints the run id last."

    def add_arguments(self, parser):
        parser.add_argument("repo")
        parser.add_argument("--ref", required=True, help="branch, tag or full ref")
        parser.add_argument("--sha", default="", help="commit to run (default: what REF names)")
        parser.add_argument(
            "--base",
            default="",
            help="commit to diff against (default: the ref's last successful run)",
        )

    def handle(self, *args, **opts):
        repo = Repository.objects.filter(name=opts["repo"]).first()
        if repo is None:
            raise CommandError(f"no repository named {opts['repo']!r} (see add_repo)")
        ref = opts["ref"]
        if ref.startswith("-") or len(ref) > 255 or any(c in ref for c in " ~^:?*[\\\n"):
            raise CommandError(f"invalid ref {ref!r}")
        sha = opts["sha"].lower()
        if sha and not gitmirror.is_sha(sha):
            raise CommandError("--sha must be a full 40-character commit id")
        if not sha:
            try:
                sha = gitmirror.resolve(sync_mirror(repo), ref)
            except gitmirror.GitError as exc:
                raise CommandError(f"cannot resolve {ref!r}: {exc}") from None
        base = opts["base"].lower()
        if base and not gitmirror.is_sha(base):
            raise CommandError("--base must be a full 40-character commit id")
        full_ref = ref if ref.startswith("refs/") else f"refs/heads/{ref}"
        run, _ = do_create_run(
            repo, trigger=Trigger.MANUAL, ref=full_ref, commit_sha=sha, base_sha=base, actor="cli"
        )
        run.refresh_from_db()
        self.stdout.write(f"run {run.pk} of {repo.name} {full_ref}@{sha[:12]}: {run.state}")
        self.stdout.write(str(run.pk))
