"""Run in a fresh process on an empty database (DATABASE_URL): build the previous
release's schema, put a queued job in it with that release's models, upgrade to this
code's schema the way an operator does (`migrate`, then `wait_for_migrations`), and lease
the job with this code. Prints one JSON line of what it saw."""

import json
import sys

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.migrations.executor import MigrationExecutor  # noqa: E402
from django.utils import timezone  # noqa: E402

from tests.upgrades.releases import RELEASES  # noqa: E402


def seed(release: list[tuple[str, str]]) -> None:
    """Rows as the previous release's code wrote them (its historical models)."""
    apps = MigrationExecutor(connection).loader.project_state(release).apps
    now = timezone.now()
    repo = apps.get_model("runs", "Repository").objects.create(
        name="before-upgrade", url="/srv/git/before.git"
    )
    run = apps.get_model("runs", "Run").objects.create(
        repository=repo,
        trigger="manual",
        event_key="upgrade:1",
        ref="refs/heads/main",
        commit_sha="b" * 40,
        state="QUEUED",
    )
    spec = {"name": "build", "image": "python:3.12", "steps": ["true"], "runs_on": []}
    job = apps.get_model("runs", "Job").objects.create(
        run=run, name="build", spec=spec, state="QUEUED"
    )
    apps.get_model("runs", "JobAttempt").objects.create(
        job=job, run=run, attempt_number=1, state="QUEUED", run_created_at=now, queued_at=now
    )


def main(release_name: str) -> None:
    release = RELEASES[release_name]
    MigrationExecutor(connection).migrate(release)
    seed(release)
    from apps.ops.management.commands.wait_for_migrations import pending_migrations

    pending = pending_migrations()
    call_command("migrate", "--noinput", verbosity=0)
    call_command("wait_for_migrations", "--timeout", "0")

    from apps.runners import dispatch
    from apps.runners.actions import do_create_registration_token, do_register_runner

    _, token = do_create_registration_token()
    runner, _ = do_register_runner(token, name="after-upgrade", capabilities=[], version="new")
    granted = dispatch.claim(runner)
    print(
        json.dumps(
            {
                "pending_before": pending,
                "pending_after": pending_migrations(),
                "granted_job": granted.body["job_spec"]["name"] if granted else None,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
