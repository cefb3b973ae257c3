from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "apps.audit"
    label = "audit"
    verbose_name = "Audit log"

    def ready(self) -> None:
        from apps.audit import checks

        # Checks alone do not run under gunicorn or celery: staging and prod refuse to
        # start there too.
        problems = checks.insecure_settings()
        if problems:
            # A clear message and exit status, not a traceback, in every process.
            raise SystemExit("\n".join(p.msg for p in problems))
