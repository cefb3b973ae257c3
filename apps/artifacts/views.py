"""Artifact downloads. Artifacts are written by untrusted code, so they are only ever
served as attachments of an opaque type (`application/octet-stream`, whatever type the
runner claimed), with `nosniff` and a sandboxing CSP, streamed from the one store. An
artifact the user may not see is a 404, the same as one that does not exist."""

import re

from django.http import FileResponse, Http404, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_GET

from apps.artifacts import storage
from apps.artifacts.models import Artifact
from apps.runs import access

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._+-]+")


def download_name(name: str) -> str:
    """A file name safe in a header and on any disk: the base name, plain characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    clean = _UNSAFE_NAME.sub("_", base).strip("._")[:150]
    return clean or "artifact"


def _protect(response: HttpResponseBase) -> HttpResponseBase:
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
def download_artifact(request, artifact_id: int):
    art = get_object_or_404(
        Artifact.objects.filter(
            attempt__run__repository__in=access.visible_repositories(request.user).values("pk"),
            recorded=True,
        ),
        pk=artifact_id,
    )
    if art.deleted_at is not None:
        return _protect(
            HttpResponse(
                "this artifact was deleted by the retention policy\n",
                status=410,
                content_type="text/plain; charset=utf-8",
            )
        )
    try:
        if storage.size_of(art.key) is None:
            raise Http404("the artifact's object is missing from the store")
        handle = storage.open_for_read(art.key)
    except (OSError, ValueError):
        raise Http404("the artifact's object is missing from the store") from None
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=download_name(art.name),
        content_type="application/octet-stream",
    )
    return _protect(response)
