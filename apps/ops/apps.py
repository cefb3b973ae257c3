from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Operations: Prometheus metrics, structured request logs, probes. No models."""

    name = "apps.ops"
    label = "ops"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from apps.ops import checks, events  # noqa: F401 - registers the system checks

        post_save.connect(
            events.log_state_event, sender="runs.StateEvent", dispatch_uid="ops.state_event_log"
        )
