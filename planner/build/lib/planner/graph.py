"""The project graph at plan time: which project owns a path (innermost root wins) and
who depends on whom, transitively."""

from collections import defaultdict, deque

from planner.discovery.model import Project


class ProjectGraph:
    """Lookups are dictionary walks up a path's directories: O(depth) per path, never
    O(paths x projects)."""

    def __init__(self, projects: list[Project]) -> None:
        self.projects = {p.name: p for p in projects}
        self.by_root: dict[str, list[Project]] = defaultdict(list)
        self.dependents: dict[str, list[str]] = defaultdict(list)
        for project in projects:
            self.by_root[project.root].append(project)
            for dep in project.deps:
                if dep in self.projects:
                    self.dependents[dep].append(project.name)
        for names in self.dependents.values():
            names.sort()

    def owners(self, path: str) -> list[Project]:
        """The projects whose root is the innermost one containing ``path``."""
        directory = path
        while directory:
            directory = directory.rpartition("/")[0]
            if directory in self.by_root:
                return self.by_root[directory]
        return self.by_root.get(".", [])

    def dependents_of(self, sources: list[str]) -> dict[str, list[str]]:
        """Every project reachable from ``sources`` through reverse edges, mapped to the
        dependency chain that reaches it (shortest, first by name), sources excluded."""
        chains: dict[str, list[str]] = {name: [name] for name in sources}
        queue = deque(sorted(sources))
        while queue:
            current = queue.popleft()
            for dependent in self.dependents.get(current, ()):
                if dependent not in chains:
                    chains[dependent] = [*chains[current], dependent]
                    queue.append(dependent)
        return {name: chain for name, chain in chains.items() if name not in sources}
