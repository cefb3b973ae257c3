"""Java: Maven modules and dependencies by artifactId; Gradle settings includes."""

from tests.planner.conftest import codes_of, jobs

POM = """<?xml version="1.0"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>com.acme</groupId>
  <artifactId>{artifact}</artifactId>
  <packaging>{packaging}</packaging>
  {modules}
  <dependencies>{deps}</dependencies>
</project>
"""


def pom(artifact, packaging="jar", modules=(), deps=()):
    mods = "<modules>" + "".join(f"<module>{m}</module>" for m in modules) + "</modules>"
    dep = "".join(
        f"<dependency><groupId>com.acme</groupId><artifactId>{d}</artifactId></dependency>"
        for d in deps
    )
    return POM.format(
        artifact=artifact, packaging=packaging, modules=mods if modules else "", deps=dep
    )


def test_maven_modules_and_inter_module_dependencies(repo):
    base = repo.commit(
        {
            "pom.xml": pom("parent", "pom", modules=["core", "services"]),
            "core/pom.xml": pom("core"),
            "core/src/main/java/A.java": "class A {}",
            "services/pom.xml": pom("services", "pom", modules=["api"]),
            "services/api/pom.xml": pom("api", deps=["core", "guava"]),
            "services/api/src/B.java": "class B {}",
        }
    )
    repo.commit({"core/src/main/java/A.java": "class A { }"})
    plan = repo.plan(base)
    assert codes_of(plan) == {"core": "FILE_CHANGED", "services/api": "DEPENDENCY_CHANGED"}
    api = jobs(plan)["services/api:test"]
    assert api["steps"] == [
        "mvn -B -f ../../pom.xml -pl services/api -am install -DskipTests",
        "mvn -B test",
    ]
    middle = repo.git("rev-parse", "HEAD")
    repo.commit({"services/pom.xml": pom("services", "pom", modules=["api"]) + " "})
    assert set(codes_of(repo.plan(middle)).values()) == {"GLOBAL_FILE_CHANGED"}


def test_gradle_includes_and_project_dependencies(repo):
    base = repo.commit(
        {
            "settings.gradle.kts": 'rootProject.name = "x"\ninclude(":lib", ":app")\n'
            'include(":tools:cli")\n',
            "build.gradle.kts": "plugins {}\n",
            "gradlew": "#!/bin/sh\n",
            "lib/build.gradle.kts": "plugins { `java-library` }\n",
            "lib/src/L.java": "",
            "app/build.gradle.kts": 'dependencies { implementation(project(":lib")) }\n',
            "tools/cli/build.gradle": "dependencies { implementation project(path: ':app') }\n",
        }
    )
    repo.commit({"lib/src/L.java": "//"})
    plan = repo.plan(base)
    assert codes_of(plan) == {
        "lib": "FILE_CHANGED",
        "app": "DEPENDENCY_CHANGED",
        "tools/cli": "DEPENDENCY_CHANGED",
    }
    assert jobs(plan)["tools/cli:test"]["steps"] == ["../../gradlew test"]
    assert jobs(plan)["lib:build"]["steps"] == ["../gradlew assemble"]
    head = repo.commit({"build.gradle.kts": "plugins { java }\n"})
    plan = repo.plan(repo.git("rev-parse", "HEAD~1"), head)
    assert set(codes_of(plan).values()) == {"GLOBAL_FILE_CHANGED"}


def test_gradle_groovy_settings_with_project_dir(repo):
    base = repo.commit(
        {
            "settings.gradle": (
                "include 'core', 'web'\nproject(':web').projectDir = file('frontend/web')\n"
            ),
            "core/build.gradle": "",
            "frontend/web/build.gradle": "dependencies { compile project(':core') }\n",
        }
    )
    repo.commit({"core/x.java": ""})
    plan = repo.plan(base)
    assert codes_of(plan) == {"core": "FILE_CHANGED", "frontend/web": "DEPENDENCY_CHANGED"}
    assert jobs(plan)["core:test"]["steps"] == ["gradle test"]


BOM_USER = """<project><artifactId>svc</artifactId>
<parent><artifactId>parent</artifactId><relativePath>../parent/pom.xml</relativePath></parent>
<dependencyManagement><dependencies>
  <dependency><artifactId>bom</artifactId><type>pom</type><scope>import</scope></dependency>
  <dependency><artifactId>managed-only</artifactId><version>1</version></dependency>
</dependencies></dependencyManagement></project>
"""


def test_maven_parent_and_bom_imports_are_named(repo):
    base = repo.commit(
        {
            "bom/pom.xml": pom("bom", packaging="pom"),
            "parent/pom.xml": pom("parent", packaging="pom"),
            "managed-only/pom.xml": pom("managed-only"),
            "svc/pom.xml": BOM_USER,
        }
    )
    repo.commit({"bom/x.txt": "1", "parent/y.txt": "1"})
    plan = repo.plan(base)
    assert codes_of(plan)["managed-only"] == "NOT_AFFECTED"
    assert jobs(plan)["svc:build"]["reason"].endswith("svc depends on bom through a BOM import")
    head = repo.commit({"parent/y.txt": "2"})
    plan = repo.plan(repo.git("rev-parse", "HEAD~1"), head)
    assert jobs(plan)["svc:build"]["reason"].endswith("svc depends on parent through <parent>")


def test_gradle_composite_builds_make_the_including_build_depend(repo):
    base = repo.commit(
        {
            "app/settings.gradle": "includeBuild('../plugins')\ninclude 'core', 'web'\n",
            "app/core/build.gradle": "",
            "app/web/build.gradle": "dependencies { implementation project(':core') }\n",
            "plugins/settings.gradle": 'include("conventions")\n',
            "plugins/conventions/build.gradle.kts": "",
            "other/build.gradle": "",
        }
    )
    repo.commit({"plugins/conventions/src/A.kt": "1"})
    plan = repo.plan(base)
    codes = codes_of(plan)
    assert codes["app/core"] == codes["app/web"] == "DEPENDENCY_CHANGED"
    assert codes["other"] == "NOT_AFFECTED"
    assert jobs(plan)["app/core:build"]["reason"].endswith(
        "app/core depends on plugins/conventions through includeBuild('../plugins')"
    )
    repo.commit({"app/core/src/B.java": "1"})
    plan = repo.plan(repo.git("rev-parse", "HEAD~1"))
    assert jobs(plan)["app/web:build"]["reason"].endswith("through project(':core')")
