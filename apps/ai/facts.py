"""What the fixed rules and the reports already know about a failed attempt, read from
the database and the log store (the input of the prompt, before redaction)."""

from apps.ai.prompt import FailingTest, FailureFacts
from apps.artifacts.models import TestResult, TestStatus
from apps.policies.models import Secret
from apps.policies.secrets import decrypt
from apps.runs.ansi import strip
from apps.runs.failures import log_tail
from apps.runs.models import JobAttempt

LOG_BYTES = 256 * 1024  # read this much of the log's end; the window sent is far smaller


def failure_facts(attempt: JobAttempt) -> FailureFacts:
    job = attempt.job
    tests = [
        FailingTest(name=".".join(p for p in (classname, name) if p), message=message or "")
        for classname, name, message in TestResult.objects.filter(
            attempt=attempt, status__in=(TestStatus.FAILED, TestStatus.ERROR)
        )
        .order_by("id")
        .values_list("classname", "name", "message")[:20]
    ]
    return FailureFacts(
        job_name=job.name,
        job_kind=str((job.spec or {}).get("kind") or job.name.rsplit(":", 1)[-1]),
        failure_class=attempt.failure_class or "unclassified",
        evidence=attempt.failure_detail or "",
        log=strip(log_tail(attempt, LOG_BYTES).decode("utf-8", "replace")),
        tests=tests,
    )


def run_secret_values(attempt: JobAttempt) -> list[str]:
    """Every secret value the run's repository holds for its environment, whether or not
    this job asked for it: redaction must not depend on what a job declared."""
    repo = attempt.run.repository
    values = []
    for ciphertext in Secret.objects.filter(
        repository=repo, environment=repo.environment
    ).values_list("ciphertext", flat=True):
        try:
            values.append(decrypt(bytes(ciphertext)))
        except ValueError:
            continue  # undecryptable with this key: it cannot have reached a runner either
    return values
