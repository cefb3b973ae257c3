from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Operations: Prometheus metrics, structured request logs, probes. No models."""

    name = "apps.ops"
    label = "ops"

    def ready(self) -> None:
        from apps.ops import checks  # noqa: F401 - registers the system checks
