"""Recipes: the plan template a discovery-planned run leaves behind once it succeeds,
reused while the build files' fingerprint matches (the planner decides whether it does)."""

from apps.runs.models import Recipe, Run


def persist_recipe(run_id: int) -> None:
    """After a discovery-planned run succeeded (called once that commits), keep its
    recipe for the same fingerprint."""
    run = Run.objects.filter(pk=run_id).only("repository_id", "recipe", "plan").first()
    if run is None or not run.recipe or not run.plan or not run.plan.get("fingerprint"):
        return
    Recipe.objects.get_or_create(
        repository_id=run.repository_id,
        fingerprint=run.plan["fingerprint"],
        defaults={"recipe": run.recipe, "source_run_id": run_id},
    )
