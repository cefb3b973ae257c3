from django.apps import AppConfig


class VcsConfig(AppConfig):
    name = "apps.vcs"
    label = "vcs"
    verbose_name = "GitHub integration"
