"""Preview a plan for any local git checkout or mirror, registered or not.

Only the pure planner is used: no database, nothing is queued, the repository is not
modified. Exit code 2 with every problem on stderr when planning fails (for example an
invalid ci.ai.yaml).
"""

from django.core.management.base import BaseCommand, CommandError

from planner import Plan, PlanError, PlannerPolicy, plan_repository
from planner.git import Git, GitError

SHOWN_PATHS = 20


def _show(text: str) -> str:
    """Control characters in file names are shown escaped, one item per line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class Command(BaseCommand):
    help = (
        "Plan the jobs for --head of the git repository at --repo and explain why each job "
        "runs or is skipped. Base defaults to the first parent of --head."
    )

    def add_arguments(self, parser):
        parser.add_argument("--repo", default=".", help="checkout or bare mirror (default .)")
        parser.add_argument("--head", default="HEAD", help="commit or ref to plan (default HEAD)")
        parser.add_argument("--base", help="commit or ref to diff against (default: head^)")
        parser.add_argument(
            "--no-base", action="store_true", help="plan without a diff (everything runs)"
        )
        parser.add_argument("--json", action="store_true", help="print the plan JSON")
        parser.add_argument("--mode", choices=("diff", "full"), default="diff")
        parser.add_argument(
            "--allowed-image",
            action="append",
            dest="allowed_images",
            metavar="PATTERN",
            help="allowed image glob (repeatable; default any)",
        )
        parser.add_argument(
            "--required-job", action="append", dest="required_jobs", default=[], metavar="NAME"
        )

    def handle(self, *args, **opts):
        try:
            base = None if opts["no_base"] else opts["base"] or self._parent(opts)
            policy = PlannerPolicy(
                allowed_images=opts["allowed_images"] or ["*"],
                required_jobs=opts["required_jobs"],
                planning_mode=opts["mode"],
            )
            plan = plan_repository(opts["repo"], opts["head"], base, policy)
        except PlanError as exc:
            raise CommandError("planning failed:\n" + str(exc), returncode=2) from exc
        if opts["json"]:
            self.stdout.write(plan.to_json().decode())
        else:
            self._human(plan)

    def _parent(self, opts) -> str | None:
        git = Git(opts["repo"])
        try:
            head = git.resolve_commit(opts["head"]) if git.is_repository() else None
            return git.first_parent(head) if head else None
        except GitError as exc:
            raise PlanError(f"repository: {exc}") from exc

    def _human(self, plan: Plan) -> None:
        out = self.stdout.write
        against = plan.base_sha[:12] if plan.base_sha else "no base (full plan)"
        out(f"Plan for {plan.head_sha[:12]} against {against}")
        out(f"source: {plan.source}   fingerprint: {plan.fingerprint[:23]}…")
        paths = plan.changed_paths
        out(f"\nChanged paths ({len(paths)}):")
        for path in paths[:SHOWN_PATHS]:
            out(f"  {_show(path)}")
        if len(paths) > SHOWN_PATHS:
            out(f"  … and {len(paths) - SHOWN_PATHS} more")
        out(f"\nRuns ({len(plan.jobs)} jobs):")
        for job in plan.jobs:
            flags = " (may fail)" if job["allow_failure"] else ""
            needs = ", ".join(job["needs"]) or "-"
            out(f"  {_show(job['name'])}{flags}  [{job['reason_code']}]")
            out(f"      why:   {_show(job['reason'])}")
            out(f"      image: {job['image']}   workdir: {_show(job['workdir'])}   needs: {needs}")
            for step in job["steps"]:
                out(f"      $ {_show(step)}")
        out(f"\nSkipped ({len(plan.skipped)} jobs):")
        for skip in plan.skipped:
            out(f"  {_show(skip['name'])}  [{skip['reason_code']}]  {_show(skip['reason'])}")
        if plan.fallback_reason:
            out(f"\nFallback: {_show(plan.fallback_reason)}")
        out(f"\nExplanation: {plan.explain}")
