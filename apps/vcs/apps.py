from django.apps import AppConfig


class VcsConfig(AppConfig):
    name = "apps.vcs"
    label = "vcs"
    verbose_name = "GitHub integration"

    def ready(self) -> None:
        from apps.runs import states

        states.on_run_transition(report_transition)


def report_transition(run_id: int, state: str) -> None:
    """Called after a run's transition commits: report it to GitHub, for runs of GitHub
    repositories. A dispatch failure is logged and shown on the run, never raised into
    the code that moved the run."""
    from apps.runs.models import Run
    from apps.vcs import auth
    from apps.vcs.tasks import report_run
    from lib.dispatch import dispatch

    if not Run.objects.filter(pk=run_id, repository__github_full_name__gt="").exists():
        return
    if not auth.mode():
        Run.objects.filter(pk=run_id, report_status="").update(
            report_status="disabled", report_error="GitHub is not configured"
        )
        return
    if not dispatch(report_run, run_id, state):  # logged and counted; reconciled later
        Run.objects.filter(pk=run_id).update(
            report_status="pending", report_error="reporting not dispatched (broker unavailable)"
        )
