"""The append-only audit table: who did what to which object, with names never values.

Rows outlive their subjects: the repository and run columns are plain ids without a
database constraint or cascade (deleting a run leaves its audit rows as they were), and
`subject` keeps a readable label of what they named. On PostgreSQL a trigger refuses
UPDATE and DELETE on the table (migration 0003); in Python the model refuses both."""

from typing import Any, NoReturn

from django.db import models


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def update(self, **kwargs: Any) -> NoReturn:
        raise PermissionError("audit events are append-only")

    def delete(self) -> NoReturn:
        raise PermissionError("audit events are append-only")


class AuditEvent(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    action = models.CharField(max_length=64, db_index=True)
    actor = models.CharField(max_length=200, help_text="user name, 'runner:<name>' or 'system'")
    repository = models.ForeignKey(
        "runs.Repository",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    run = models.ForeignKey(
        "runs.Run", null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False
    )
    subject = models.CharField(
        max_length=200,
        blank=True,
        db_default="",
        help_text="the run and repository named, as they were",
    )
    target = models.CharField(max_length=200, blank=True)
    details = models.JSONField(default=dict, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["action", "created_at"])]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.action} by {self.actor}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise PermissionError("audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("audit events are append-only")
