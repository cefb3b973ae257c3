from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Operations: Prometheus metrics, structured request logs, probes. No models."""

    name = "apps.ops"
    label = "ops"

    def ready(self) -> None:
        from apps.ops import checks, events  # noqa: F401 - registers the system checks
        from apps.runs import states

        states.on_state_event(events.log_state_event)
