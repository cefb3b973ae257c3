from django.db import models


class LeaseState(models.TextChoices):
    GRANTED = "GRANTED"
    ACTIVE = "ACTIVE"
    EXPIRED = "EXPIRED"
    REVOKED = "REVOKED"
    COMPLETED = "COMPLETED"
    CANCELED = "CANCELED"


LEASE_LIVE = (LeaseState.GRANTED, LeaseState.ACTIVE)
LEASE_ENDED = (LeaseState.EXPIRED, LeaseState.REVOKED, LeaseState.COMPLETED, LeaseState.CANCELED)
