from django.urls import path

from apps.runners.api import views
from apps.runners.api.queue import QueueDepthView

urlpatterns = [
    path("runners/register", views.RegisterView.as_view(), name="runner-register"),
    path("runners/queue-depth", QueueDepthView.as_view(), name="queue-depth"),
    path("internal/lease", views.LeaseView.as_view(), name="lease"),
    path("internal/ack-lease", views.AckView.as_view(), name="ack-lease"),
    path("internal/heartbeat", views.HeartbeatView.as_view(), name="heartbeat"),
    path("internal/complete", views.CompleteView.as_view(), name="complete"),
    path("internal/cancel-ack", views.CancelAckView.as_view(), name="cancel-ack"),
    path("internal/log", views.LogView.as_view(), name="log-chunk"),
    path("internal/artifacts", views.ArtifactRequestView.as_view(), name="artifact-request"),
]
