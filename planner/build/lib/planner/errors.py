"""The one exception the planner raises for input it cannot plan."""


class PlanError(Exception):
    """Planning failed for reasons the repository owner can fix.

    Every problem is kept (``problems``) so the owner sees all of them at once;
    ``str(error)`` lists them one per line, each ``path.to.field: message`` when it
    comes from ``ci.ai.yaml`` validation.
    """

    def __init__(self, problems: list[str] | str) -> None:
        if isinstance(problems, str):
            problems = [problems]
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))
