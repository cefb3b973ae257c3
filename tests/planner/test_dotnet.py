""".NET: csproj ProjectReference edges; solutions and Directory.Build.props are global."""

from tests.planner.conftest import codes_of, jobs

CSPROJ = """<Project Sdk="Microsoft.NET.Sdk">
  <ItemGroup>{refs}</ItemGroup>
</Project>
"""


def csproj(*refs):
    return CSPROJ.format(refs="".join(f'<ProjectReference Include="{r}" />' for r in refs))


def _repo(repo):
    return repo.commit(
        {
            "Acme.sln": 'Microsoft Visual Studio Solution File\nProject("{FAE04EC0}") = "Core", '
            '"src\\Core\\Core.csproj", "{1}"\nEndProject\n',
            "src/Core/Core.csproj": csproj(),
            "src/Core/C.cs": "",
            "src/Api/Api.csproj": csproj("..\\Core\\Core.csproj"),
            "src/Api/A.cs": "",
            "tests/Api.Tests/Api.Tests.csproj": csproj("../../src/Api/Api.csproj"),
            "tools/Tool.fsproj": csproj(),
        }
    )


def test_project_references_chain(repo):
    base = _repo(repo)
    repo.commit({"src/Core/C.cs": "//"})
    plan = repo.plan(base)
    assert codes_of(plan) == {
        "src/Core": "FILE_CHANGED",
        "src/Api": "DEPENDENCY_CHANGED",
        "tests/Api.Tests": "DEPENDENCY_CHANGED",
        "tools": "NOT_AFFECTED",
    }
    assert jobs(plan)["tests/Api.Tests:test"]["steps"] == ['dotnet test "Api.Tests.csproj"']


def test_solution_and_build_props_are_global(repo):
    base = _repo(repo)
    repo.commit({"Directory.Build.props": "<Project/>"})
    assert set(codes_of(repo.plan(base)).values()) == {"GLOBAL_FILE_CHANGED"}
    base = repo.git("rev-parse", "HEAD")
    repo.commit({"Acme.sln": "changed"})
    assert set(codes_of(repo.plan(base)).values()) == {"GLOBAL_FILE_CHANGED"}


def test_two_projects_in_one_directory_get_distinct_names(repo):
    repo.commit({"lib/A.csproj": csproj(), "lib/B.csproj": csproj("A.csproj")})
    names = set(jobs(repo.plan(None)))
    assert "lib[dotnet:A.csproj]:build" in names
    assert "lib[dotnet:B.csproj]:build" in names


def test_directory_build_props_and_central_package_references(repo):
    props = '<Project><ItemGroup><ProjectReference Include="Analyzers/Analyzers.csproj" />'
    base = repo.commit(
        {
            "src/Directory.Build.props": props + "</ItemGroup></Project>",
            "src/Analyzers/Analyzers.csproj": "<Project />",
            "src/App/App.csproj": "<Project />",
            "Directory.Packages.props": "<Project />",
            "libs/Json/Json.csproj": "<Project><PropertyGroup><PackageId>Acme.Json</PackageId>"
            "</PropertyGroup></Project>",
            "svc/Svc.csproj": '<Project><ItemGroup><PackageReference Include="Acme.Json" />'
            "</ItemGroup></Project>",
        }
    )
    repo.commit({"src/Analyzers/A.cs": "//", "libs/Json/J.cs": "//"})
    plan = repo.plan(base)
    reasons = {n: j["reason"] for n, j in jobs(plan).items()}
    assert reasons["src/App:build"].endswith(
        "src/App depends on src/Analyzers through a ProjectReference in src/Directory.Build.props"
    )
    assert reasons["svc:build"].endswith(
        "svc depends on libs/Json through PackageReference "
        "(central package management, Directory.Packages.props)"
    )
    assert "src/Analyzers:build" in reasons  # itself changed; it never depends on itself
