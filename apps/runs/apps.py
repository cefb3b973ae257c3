from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "apps.runs"
    label = "runs"
    verbose_name = "Runs"

    def ready(self) -> None:
        from apps.runs import states
        from apps.runs.planning import persist_recipe

        states.on_run_transition(persist_recipe)
