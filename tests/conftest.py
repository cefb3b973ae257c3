"""Shared fixtures, each defined once: named actors, a repository, a registered runner and
its protocol client, and runs whose jobs are created directly (no planner), so protocol
and state tests stay independent."""

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.db import connection
from rest_framework.test import APIClient

from apps.runners.actions import do_create_registration_token, do_register_runner
from apps.runs import engine, states
from apps.runs.actions import do_add_repository
from apps.runs.choices import JobState, RunState, Trigger
from apps.runs.models import Job, Run
from tests.protocol.proto import Proto

SHA = "a" * 40
RUN_PERMISSIONS = ("cancel_run", "rerun_run", "trigger_run")


def pytest_configure(config):
    """Passwords hash with MD5 under pytest: the real hasher's work factor is the point
    in production and only costs time here."""
    from django.conf import settings

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def pytest_collection_modifyitems(config, items):
    """`postgres` tests run only when the database is PostgreSQL."""
    from django.conf import settings

    if "postgresql" in settings.DATABASES["default"]["ENGINE"]:
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _fresh_cache(settings):
    """Each test its own empty cache: failed-authentication counts never carry over."""
    import uuid

    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": uuid.uuid4().hex,
        }
    }


@pytest.fixture(autouse=True)
def _celery_eager():
    """Tasks run inline in the test process whatever broker is configured; end-to-end
    tests start a real worker process on the real broker for their servers instead."""
    from deltaci.celery import app

    # The app reads Django settings with the CELERY_ namespace, where the prefixed key
    # wins over `task_always_eager`.
    old = app.conf.CELERY_TASK_ALWAYS_EAGER
    app.conf.CELERY_TASK_ALWAYS_EAGER = True
    assert app.conf.task_always_eager
    yield
    app.conf.CELERY_TASK_ALWAYS_EAGER = old


@pytest.fixture
def repo(db):
    return do_add_repository("demo", "/nonexistent/demo.git", actor="system")


@pytest.fixture
def runner_factory(db):
    def make(name="r1", capabilities=("os:linux", "tool:python3"), environment="dev"):
        _, reg = do_create_registration_token(environment=environment)
        runner, token = do_register_runner(
            reg, name=name, capabilities=list(capabilities), version="t"
        )
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        runner.client = client
        runner.token = token
        return runner

    return make


@pytest.fixture
def runner(runner_factory):
    return runner_factory()


def job_spec(name: str, **extra) -> dict:
    spec = {
        "name": name,
        "image": "python:3.12",
        "workdir": ".",
        "steps": ["true"],
        "needs": [],
        "env": {},
        "artifacts": [],
        "caches": [],
        "secrets": [],
        "runs_on": [],
        "limits": {},
        "timeout_seconds": 3600,
        "required": True,
        "allow_failure": False,
        "retries": 0,
    }
    spec.update(extra)
    return spec


@pytest.fixture
def make_run(repo):
    """make_run([job_spec("a"), job_spec("b", needs=["a"])]) -> a QUEUED run."""

    def make(specs=None, repository=None, **run_fields):
        repository = repository or repo
        specs = specs if specs is not None else [job_spec("build")]
        fields = {"trigger": Trigger.MANUAL, "ref": "refs/heads/main", "commit_sha": SHA}
        fields.update(run_fields)
        run = Run.objects.create(
            repository=repository,
            event_key=f"test:{Run.objects.count()}",
            **fields,
        )
        states.transition(states.RUN, run, RunState.PLANNING, actor="system")
        for pos, spec in enumerate(specs):
            Job.objects.create(
                run=run,
                name=spec["name"],
                position=pos,
                needs=spec.get("needs", []),
                required=spec.get("required", True),
                allow_failure=spec.get("allow_failure", False),
                retries=spec.get("retries", 0),
                spec=spec,
                state=JobState.PENDING,
            )
        states.transition(
            states.RUN, run, RunState.QUEUED, plan={"jobs": specs, "skipped": []}, actor="system"
        )
        engine.advance_run(run, actor="system")
        run.refresh_from_db()
        return run

    return make


@pytest.fixture
def proto(runner):
    """The runner protocol spoken as `runner` (tests/protocol/proto.py)."""
    return Proto(runner)


# --- named actors --------------------------------------------------------------------


def _with_run_permissions(user: User) -> User:
    user.user_permissions.add(*Permission.objects.filter(codename__in=RUN_PERMISSIONS))
    return user


@pytest.fixture
def operator(db):
    """Staff and superuser: sees everything, works in admin."""
    return User.objects.create_user("olga", password="x", is_staff=True, is_superuser=True)


@pytest.fixture
def member(repo):
    """Reads the repository and may trigger, cancel and rerun its runs."""
    user = _with_run_permissions(User.objects.create_user("mia", password="x"))
    repo.members.add(user)
    return user


@pytest.fixture
def reader(repo):
    """Reads the repository (through a group) but may not act on it."""
    user = User.objects.create_user("rita", password="x")
    group = Group.objects.create(name="readers")
    user.groups.add(group)
    repo.member_groups.add(group)
    return user


@pytest.fixture
def outsider(db):
    """Logged in, with every run permission, but no access to the private repository."""
    return _with_run_permissions(User.objects.create_user("otto", password="x"))


@pytest.fixture
def api():
    return APIClient()


def is_postgres() -> bool:
    return connection.vendor == "postgresql"
