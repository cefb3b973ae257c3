from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "apps.audit"
    label = "audit"
    verbose_name = "Audit log"

    def ready(self) -> None:
        from django.conf import settings

        from apps.audit import checks

        # Checks alone do not run under gunicorn or celery: prod refuses to start there too.
        if settings.DELTACI_ENV == "prod":
            problems = checks.insecure_settings()
            if problems:
                # A clear message and exit status, not a traceback, in every process.
                raise SystemExit("\n".join(p.msg for p in problems))
