"""Planning at monorepo scale (a benchmark, not a test).

Builds a synthetic mixed monorepo (default 2,000 projects, 100,000 files, dependency
chains inside each ecosystem, the Node packages an npm workspace with a package-lock.json)
with ``git fast-import``, commits a 500-file change and then a lockfile change (one
registry package bumped), then measures, in a fresh process, the planner against a git
baseline taken in the same run (``git ls-files`` + ``git diff --name-status`` on that
repository): the median of N interleaved rounds for both (the best round is printed too;
on a busy machine the best favours the shorter task, the median does not).

    .venv/bin/python bench/planning_scale.py [--projects N] [--files N] [--changed N]

Target: plan within 5x the baseline and under 300 MB peak RSS. The last line of output
is one JSON object: files, projects, changed_files, plan_seconds, git_baseline_seconds,
ratio, peak_rss_mb, plan_seconds_lockfile_change (the lockfile-only change, planned by
reading both versions of the lockfile).
"""

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHAIN = 10  # projects per dependency chain: each depends on the previous one
REGISTRY = 2000  # registry packages in the npm lockfile; each node package uses three
ECOSYSTEMS = (  # share of projects, directory, manifest file, source extension
    ("go", 25, "go", "go.mod", "go"),
    ("node", 30, "web", "package.json", "ts"),
    ("python", 25, "py", "pyproject.toml", "py"),
    ("rust", 10, "crates", "Cargo.toml", "rs"),
    ("java", 5, "jvm", "pom.xml", "java"),
    ("dotnet", 5, "dotnet", "App.csproj", "cs"),
)


def manifest(ecosystem: str, index: int, dep: int | None) -> str:
    """A manifest for project ``index`` of its ecosystem, depending on ``dep``."""
    name = f"p{index:05d}"
    if ecosystem == "go":
        req = f"require example.com/p{dep:05d} v0.0.0\n" if dep is not None else ""
        return f"module example.com/{name}\n\ngo 1.22\n\n{req}"
    if ecosystem == "node":
        deps = {f"@bench/p{dep:05d}": "workspace:*"} if dep is not None else {}
        deps.update({f"r{r:04d}": "^1.0.0" for r in _registry_deps(index)})
        data = {"name": f"@bench/{name}", "dependencies": deps, "scripts": {"test": "vitest"}}
        return json.dumps(data, indent=2)
    if ecosystem == "python":
        deps = f'"bench-p{dep:05d}"' if dep is not None else ""
        return f'[project]\nname = "bench-{name}"\nversion = "1"\ndependencies = [{deps}]\n'
    if ecosystem == "rust":
        dep_line = f'p{dep:05d} = {{ path = "../p{dep:05d}" }}\n' if dep is not None else ""
        return f'[package]\nname = "{name}"\nversion = "0.1.0"\n\n[dependencies]\n{dep_line}'
    if ecosystem == "java":
        dep_xml = (
            f"<dependencies><dependency><groupId>b</groupId><artifactId>p{dep:05d}</artifactId>"
            "</dependency></dependencies>"
            if dep is not None
            else ""
        )
        return (
            '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0'
            f"</modelVersion><groupId>b</groupId><artifactId>{name}</artifactId>{dep_xml}"
            "</project>\n"
        )
    ref = f'<ProjectReference Include="../p{dep:05d}/App.csproj" />' if dep is not None else ""
    return f'<Project Sdk="Microsoft.NET.Sdk"><ItemGroup>{ref}</ItemGroup></Project>\n'


def _registry_deps(index: int) -> list[int]:
    return [(index * 7 + k * 131) % REGISTRY for k in range(3)]


def npm_lock(members: list[str], bumped: int | None = None) -> str:
    """A package-lock.json (v3) for the node members; ``bumped`` gets a new version."""
    packages: dict[str, dict] = {"": {"name": "bench", "workspaces": ["web/*"]}}
    for root in members:
        index = int(root.rsplit("p", 1)[1])
        deps = {f"r{r:04d}": "^1.0.0" for r in _registry_deps(index)}
        packages[root] = {"name": f"@bench/{root.rsplit('/', 1)[1]}", "dependencies": deps}
        packages[f"node_modules/@bench/{root.rsplit('/', 1)[1]}"] = {"resolved": root, "link": True}
    for r in range(REGISTRY):
        version = "1.0.1" if r == bumped else "1.0.0"
        entry = {"version": version, "resolved": f"https://registry.example/r{r:04d}-{version}.tgz",
                 "integrity": f"sha512-{r:04d}{version}"}  # fmt: skip
        if r % 10:
            entry["dependencies"] = {f"r{r - 1:04d}": "^1.0.0"}  # chains of ten
        packages[f"node_modules/r{r:04d}"] = entry
    return json.dumps({"name": "bench", "lockfileVersion": 3, "packages": packages}, indent=2)


def layout(projects: int, files: int) -> tuple[list[tuple[str, str]], dict[str, list[str]]]:
    """(path, content) for every file, and each project's source files."""
    out: list[tuple[str, str]] = [("README.md", "# bench\n"), (".tool-versions", "go 1.22\n")]
    sources: dict[str, list[str]] = {}
    weights = sum(e[1] for e in ECOSYSTEMS)
    counts = [projects * e[1] // weights for e in ECOSYSTEMS]
    counts[0] += projects - sum(counts)
    per_project = max(2, (files - len(out)) // projects)
    extra = files - len(out) - per_project * projects
    for (ecosystem, _, top, manifest_name, ext), count in zip(ECOSYSTEMS, counts, strict=True):
        for index in range(count):
            root = f"{top}/p{index:05d}"
            dep = index - 1 if index % CHAIN else None
            out.append((f"{root}/{manifest_name}", manifest(ecosystem, index, dep)))
            out.append((f"{root}/README.md", f"# {root}\n"))
            n_src = per_project - 2 + (1 if extra > 0 else 0)
            extra -= 1
            paths = [f"{root}/src/m{k % 7}/f{k:03d}.{ext}" for k in range(n_src)]
            sources[root] = paths
            out += [(p, f"// {p}\n") for p in paths]
    members = sorted(r for r in sources if r.startswith("web/"))
    out.append(("package.json", json.dumps({"name": "bench", "workspaces": ["web/*"]})))
    out.append(("package-lock.json", npm_lock(members)))
    return out, sources


def fast_import(repo: Path, files: list[tuple[str, str]], change: list[str], lock: str) -> None:
    """Three commits on main: everything, the change, then a lockfile change; no working
    tree is written."""
    proc = subprocess.Popen(
        ["git", "-C", str(repo), "fast-import", "--quiet"], stdin=subprocess.PIPE
    )

    def commit(mark: int, message: str, entries: list[tuple[str, str]], parent: int | None):
        msg = message.encode()
        head = f"commit refs/heads/main\nmark :{mark}\n"
        head += "author Bench <b@b> 1700000000 +0000\ncommitter Bench <b@b> 1700000000 +0000\n"
        chunks = [head.encode(), b"data %d\n" % len(msg), msg, b"\n"]
        if parent is not None:
            chunks.append(b"from :%d\n" % parent)
        for path, content in entries:
            data = content.encode()
            chunks.append(b"M 100644 inline %s\ndata %d\n%s\n" % (path.encode(), len(data), data))
        proc.stdin.write(b"".join(chunks))

    commit(1, "everything", files, None)
    commit(2, "the change", [(p, f"// changed {p}\n") for p in change], 1)
    commit(3, "a registry package bumped", [("package-lock.json", lock)], 2)
    proc.stdin.close()
    if proc.wait() != 0:
        sys.exit("git fast-import failed")


def interleaved(runs: int, *fns) -> list[list[float]]:
    """Times of each function over ``runs`` rounds, alternating them so a busy machine
    slows both sides alike."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(runs):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            times[i].append(time.perf_counter() - start)
    return times


def measure(repo: str, base: str, head: str, runs: int, lock_head: str) -> dict:
    """Runs in a fresh process so only the planner's memory is counted."""
    sys.path.insert(0, str(ROOT))
    from planner import PlannerPolicy, plan_repository

    def baseline() -> None:
        for argv in (
            ["git", "-C", repo, "ls-files", "-z"],
            ["git", "-C", repo, "diff", "--name-status", "-M", "-z", base, head],
        ):
            subprocess.run(argv, check=True, capture_output=True)

    policy = PlannerPolicy(max_jobs=1_000_000)
    result = {}

    def plan() -> None:
        result["plan"] = plan_repository(repo, head, base, policy)
        result["bytes"] = len(result["plan"].to_json())

    def plan_lockfile() -> None:
        result["lockfile"] = plan_repository(repo, lock_head, head, policy)

    baseline(), plan(), plan_lockfile()  # warm the page cache and imports for all
    git_times, plan_times, lock_times = interleaved(runs, baseline, plan, plan_lockfile)
    planned, locked = result["plan"], result["lockfile"]
    return {
        "git_baseline_seconds": statistics.median(git_times),
        "plan_seconds": statistics.median(plan_times),
        "git_best_seconds": min(git_times),
        "plan_best_seconds": min(plan_times),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "git_child_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "jobs": len(planned.jobs),
        "skipped": len(planned.skipped),
        "changed_paths": len(planned.changed_paths),
        "plan_bytes": result["bytes"],
        "plan_seconds_lockfile_change": statistics.median(lock_times),
        "lockfile_jobs": len(locked.jobs),
        "lockfile_codes": sorted({j["reason_code"] for j in locked.jobs}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=2000)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--changed", type=int, default=500)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--measure", nargs=4, metavar=("REPO", "BASE", "HEAD", "LOCK_HEAD"))
    args = parser.parse_args()
    if args.measure:
        repo, base, head, lock_head = args.measure
        print(json.dumps(measure(repo, base, head, args.runs, lock_head)))
        return
    with tempfile.TemporaryDirectory(prefix="deltaci-bench-") as tmp:
        repo = Path(tmp) / "mono"
        subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
        started = time.perf_counter()
        files, sources = layout(args.projects, args.files)
        rng = random.Random(42)
        touched = rng.sample(sorted(sources), args.changed // 10)
        change = sorted(p for root in touched for p in sources[root][:10])[: args.changed]
        members = sorted(r for r in sources if r.startswith("web/"))
        fast_import(repo, files, change, npm_lock(members, bumped=rng.randrange(REGISTRY)))
        subprocess.run(["git", "-C", str(repo), "read-tree", "main"], check=True)
        print(
            f"generated {len(files)} files in {args.projects} projects, {len(change)} "
            f"changed, in {time.perf_counter() - started:.1f}s"
        )
        base, head = (
            subprocess.run(
                ["git", "-C", str(repo), "rev-parse", rev],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
            for rev in ("main~2", "main~1")
        )
        lock_head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "main"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        child = subprocess.run(
            [
                sys.executable,
                __file__,
                "--runs",
                str(args.runs),
                "--measure",
                str(repo),
                base,
                head,
                lock_head,
            ],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
        stats = json.loads(child.stdout.strip().splitlines()[-1])
    ratio = stats["plan_seconds"] / stats["git_baseline_seconds"]
    print(
        f"plan {stats['plan_seconds']:.3f}s median, {stats['plan_best_seconds']:.3f}s best "
        f"({stats['jobs']} jobs, {stats['skipped']} skipped, {stats['plan_bytes']} bytes of "
        f"JSON) vs git baseline {stats['git_baseline_seconds']:.3f}s median, "
        f"{stats['git_best_seconds']:.3f}s best: {ratio:.2f}x median, "
        f"{stats['plan_best_seconds'] / stats['git_best_seconds']:.2f}x best (target <= 5x)"
    )
    print(
        f"lockfile change: plan {stats['plan_seconds_lockfile_change']:.3f}s median, "
        f"{stats['lockfile_jobs']} jobs ({', '.join(stats['lockfile_codes'])})"
    )
    print(
        f"peak RSS {stats['peak_rss_mb']:.1f} MB (target < 300 MB; largest git child "
        f"{stats['git_child_peak_rss_mb']:.1f} MB); load average {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} CPUs"
    )
    print(
        json.dumps(
            {
                "files": len(files),
                "projects": args.projects,
                "changed_files": stats["changed_paths"],
                "plan_seconds": round(stats["plan_seconds"], 4),
                "git_baseline_seconds": round(stats["git_baseline_seconds"], 4),
                "ratio": round(ratio, 2),
                "peak_rss_mb": round(stats["peak_rss_mb"], 1),
                "plan_seconds_lockfile_change": round(stats["plan_seconds_lockfile_change"], 4),
            }
        )
    )


if __name__ == "__main__":
    main()
