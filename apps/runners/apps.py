from django.apps import AppConfig


class RunnersConfig(AppConfig):
    name = "apps.runners"
    label = "runners"
    verbose_name = "Runners and leases"
