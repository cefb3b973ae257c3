"""Preview a plan: for a registered repository (``--repo NAME``) exactly as the server
would plan a manual run of its ref — its mirror, its policy, its recipe, and the ref's
last successful run as the base — or for any local checkout or mirror (``--repo PATH``,
the pure planner only, base = the head's first parent).

Nothing is queued and the repository is not modified. Exit code 2 with every problem on
stderr when planning fails (an invalid ci.ai.yaml) or a given ``--base``/``--head`` is not
a commit: an unknown base is an error, never a silent full plan.
"""

from collections import Counter
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from lib import gitmirror
from planner import Plan, PlanError, PlannerPolicy, plan_repository
from planner.git import Git, GitError

SHOWN_PATHS = 20


def _show(text: str) -> str:
    """Control characters in file names are shown escaped, one item per line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class Command(BaseCommand):
    help = (
        "Plan the jobs for --head of a registered repository (--repo NAME: the server's "
        "base, policy and recipe) or of a local checkout (--repo PATH: base = head^) and "
        "explain why each job runs or is skipped. -v lists every skipped job."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        """``-v`` alone means ``-v 2`` (list every skipped job)."""
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        for action in parser._actions:
            if "--verbosity" in action.option_strings:
                action.nargs, action.const = "?", 2
        return parser

    def add_arguments(self, parser):
        parser.add_argument(
            "--repo", default=".", help="a registered repository's name, or a checkout/mirror"
        )
        parser.add_argument("--head", help="commit or ref to plan (default: the ref, or HEAD)")
        parser.add_argument("--ref", help="registered repository: the ref (default branch)")
        parser.add_argument(
            "--base", help="commit or ref to diff against (default: as the server would)"
        )
        parser.add_argument(
            "--no-base", action="store_true", help="plan without a diff (everything runs)"
        )
        parser.add_argument("--json", action="store_true", help="print the plan JSON")
        parser.add_argument("--mode", choices=("diff", "full"), help="planning mode override")
        parser.add_argument(
            "--allowed-image",
            action="append",
            dest="allowed_images",
            metavar="PATTERN",
            help="allowed image glob (repeatable; default: the policy's, or any)",
        )
        parser.add_argument(
            "--required-job", action="append", dest="required_jobs", default=[], metavar="NAME"
        )

    def handle(self, *args, **opts):
        try:
            repo = _registered(opts["repo"])
            plan = self._plan_registered(repo, opts) if repo else self._plan_path(opts)
        except PlanError as exc:
            raise CommandError("planning failed:\n" + str(exc), returncode=2) from exc
        except (GitError, gitmirror.GitError) as exc:
            raise CommandError(f"planning failed:\nrepository: {exc}", returncode=2) from exc
        if opts["json"]:
            self.stdout.write(plan.to_json().decode())
        else:
            self._human(plan, opts["verbosity"])

    def _policy(self, opts, base: PlannerPolicy | None = None) -> PlannerPolicy:
        base = base or PlannerPolicy()
        return PlannerPolicy(
            allowed_images=opts["allowed_images"] or base.allowed_images,
            required_jobs=[*base.required_jobs, *opts["required_jobs"]],
            planning_mode=opts["mode"] or base.planning_mode,
            default_timeout_seconds=base.default_timeout_seconds,
            default_retries=base.default_retries,
            max_jobs=base.max_jobs,
            max_config_bytes=base.max_config_bytes,
            caching_enabled=base.caching_enabled,
        )

    def _plan_path(self, opts) -> Plan:
        if not Path(opts["repo"]).is_dir():
            raise PlanError(
                f"--repo: {opts['repo']!r} is neither a registered repository nor a directory"
            )
        git = Git(opts["repo"])
        if not git.is_repository():
            raise PlanError(f"repo_path: {opts['repo']} is not a git repository")
        head = _head(git, opts["head"] or "HEAD")
        base = None if opts["no_base"] else _commit(git, opts["base"], "--base")
        if base is None and not opts["no_base"] and not opts["base"]:
            base = git.first_parent(head)
        return plan_repository(opts["repo"], head, base, self._policy(opts))

    def _plan_registered(self, repo, opts) -> Plan:
        from apps.policies.effective import policy_for
        from apps.runs.planning import last_success_base, latest_recipe, planner_policy
        from apps.vcs.auth import clone_token_for

        ref = opts["ref"] or f"refs/heads/{repo.default_branch}"
        mirror = gitmirror.sync_mirror(
            settings.DELTACI_MIRROR_DIR, repo.name, repo.url, token=clone_token_for(repo)
        )
        git = Git(str(mirror))
        head = _head(git, opts["head"] or ref)
        unavailable = None
        if opts["no_base"]:
            base, unavailable = None, "--no-base: planned without a diff"
        elif opts["base"]:
            base = _commit(git, opts["base"], "--base")
        else:
            base, unavailable = last_success_base(repo, ref, head, mirror)
        self.stderr.write(f"base: {base or unavailable} (as the server would plan {ref})")
        return plan_repository(
            str(mirror),
            head,
            base,
            self._policy(opts, planner_policy(policy_for(repo))),
            recipe=latest_recipe(repo),
            diff_unavailable_reason=unavailable,
        )

    def _human(self, plan: Plan, verbosity: int) -> None:
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
        self._skipped(plan, verbosity)
        if plan.fallback_reason:
            out(f"\nFallback: {_show(plan.fallback_reason)}")
        out(f"\nExplanation: {plan.explain}")

    def _skipped(self, plan: Plan, verbosity: int) -> None:
        """Grouped by reason code with counts; ``-v`` lists every skipped job."""
        out = self.stdout.write
        counts = Counter(s["reason_code"] for s in plan.skipped)
        out(f"\nSkipped ({len(plan.skipped)} jobs):")
        for code, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
            group = [s for s in plan.skipped if s["reason_code"] == code]
            out(f"  {code}: {count} job{'s' if count != 1 else ''}")
            shown = group if verbosity >= 2 else group[:1]
            for skip in shown:
                out(f"      {_show(skip['name'])}  {_show(skip['reason'])}")
            if len(group) > len(shown):
                out(f"      … and {len(group) - len(shown)} more (-v lists them all)")


def _registered(name: str):
    """The registered repository called ``name``; paths (".", anything with a slash) are
    never looked up, so previewing a checkout needs no database."""
    if "/" in name or name in (".", ".."):
        return None
    from django.db import DatabaseError

    from apps.runs.models import Repository

    try:
        return Repository.objects.filter(name=name).first()
    except DatabaseError:  # no database set up here: a relative path, then
        return None


def _head(git: Git, rev: str) -> str:
    commit = _commit(git, rev, "--head")
    assert commit is not None  # a name was given: _commit raised if it is not a commit
    return commit


def _commit(git: Git, rev: str | None, option: str) -> str | None:
    """The commit ``rev`` names; a name that is not a commit is an error (exit 2)."""
    if rev is None:
        return None
    commit = git.resolve_commit(rev)
    if commit is None:
        raise PlanError(f"{option}: {rev!r} is not a commit in the repository")
    return commit
