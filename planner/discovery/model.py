"""What discovery produces: projects with commands and dependencies, manifests it could
not read, and the paths that count as global for this repository."""

from dataclasses import dataclass, field
from typing import Any

KINDS = ("build", "test", "lint")


@dataclass
class Project:
    """One buildable unit, rooted at a directory ("." is the repository root)."""

    root: str
    ecosystem: str
    manifest: str
    image: str
    steps: dict[str, list[str]]
    provides: list[str] = field(default_factory=list)  # keys others may require
    requires: list[str] = field(default_factory=list)  # keys of what this one uses
    path_deps: list[str] = field(default_factory=list)  # directories or manifest paths
    # requirement key or path dependency -> the mechanism that makes it an edge, when it
    # is not a plain dependency ("[patch.crates-io]", "link: protocol", ...)
    mechanisms: dict[str, str] = field(default_factory=dict)
    name: str = ""  # unique in the plan; assigned after all ecosystems ran
    deps: list[str] = field(default_factory=list)  # names of in-repo projects it uses
    via: dict[str, str] = field(default_factory=dict)  # dependency name -> mechanism
    no_script: dict[str, str] = field(default_factory=dict)  # kind -> what is missing
    member: bool = False  # a workspace declaration names it (never folded into another)

    def to_recipe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "root": self.root,
            "ecosystem": self.ecosystem,
            "manifest": self.manifest,
            "image": self.image,
            "steps": {kind: list(self.steps[kind]) for kind in KINDS},
            "deps": list(self.deps),
            "via": dict(sorted(self.via.items())),
            "no_script": dict(sorted(self.no_script.items())),
        }

    @classmethod
    def from_recipe(cls, data: dict[str, Any]) -> "Project":
        steps = data["steps"]
        project = cls(
            root=_str(data["root"]),
            ecosystem=_str(data["ecosystem"]),
            manifest=_str(data["manifest"]),
            image=_str(data["image"]),
            steps={kind: [_str(s) for s in steps[kind]] for kind in KINDS},
            name=_str(data["name"]),
            deps=[_str(d) for d in data["deps"]],
            via={_str(k): _str(v) for k, v in data["via"].items()},
            no_script={_str(k): _str(v) for k, v in data["no_script"].items()},
        )
        return project


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("recipe field is not a string")
    return value


@dataclass(frozen=True)
class Unreadable:
    path: str
    ecosystem: str
    message: str


@dataclass
class EcosystemResult:
    projects: list[Project] = field(default_factory=list)
    unreadable: list[Unreadable] = field(default_factory=list)
    global_paths: set[str] = field(default_factory=set)


@dataclass
class Discovery:
    projects: list[Project]  # sorted by name, names unique
    unreadable: list[Unreadable]
    global_paths: list[str]

    def to_recipe(self) -> dict[str, Any]:
        return {
            "projects": [p.to_recipe() for p in self.projects],
            "unreadable": [[u.path, u.ecosystem, u.message] for u in self.unreadable],
            "global_paths": list(self.global_paths),
        }

    @classmethod
    def from_recipe(cls, data: dict[str, Any]) -> "Discovery":
        return cls(
            projects=[Project.from_recipe(p) for p in data["projects"]],
            unreadable=[Unreadable(_str(p), _str(e), _str(m)) for p, e, m in data["unreadable"]],
            global_paths=[_str(p) for p in data["global_paths"]],
        )
