from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from apps.ops.views import metrics
from apps.runners.api.upload import upload_artifact
from deltaci.health import healthz, readyz

admin.site.site_header = "Delta CI administration"
admin.site.site_title = "Delta CI administration"
admin.site.index_title = "Repositories, policies, runners and runs"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include("apps.runners.api.urls")),
    path("api/v1/", include("apps.runs.api.urls")),
    path("api/v1/webhooks/", include("apps.vcs.urls")),
    path("api/v1/artifacts/upload/<str:token>", upload_artifact, name="artifact-upload"),
    path("", include("apps.artifacts.urls")),
    path("", include("apps.runs.urls")),
]
