from django.apps import AppConfig


class RunnersConfig(AppConfig):
    name = "apps.runners"
    label = "runners"
    verbose_name = "Runners and leases"

    def ready(self) -> None:
        from apps.runners import checks  # noqa: F401 - registers the statements check
