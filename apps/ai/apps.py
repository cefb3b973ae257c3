from django.apps import AppConfig


class AiConfig(AppConfig):
    name = "apps.ai"
    label = "ai"
    verbose_name = "AI failure analysis"

    def ready(self) -> None:
        # The start-up check, and the task: other apps queue it by name, so it must be
        # registered in every process (eager mode included), not only in workers.
        from apps.ai import checks, tasks  # noqa: F401
