"""Shapes of runner messages. Parsing and validation only: strict enums, bounded
strings; unknown extra fields are ignored, missing required ones are a 400."""

import copy
from typing import Any, ClassVar

from rest_framework import serializers

from apps.artifacts.models import ArtifactType
from apps.policies.images import DIGEST

LEASE_ID: dict[str, Any] = {"max_length": 200}


class MessageSerializer(serializers.Serializer):
    """Runner messages arrive hundreds of times a second. DRF deep-copies (rebuilds)
    every declared field, validators included, for each serializer it makes; these
    take shallow copies of one prototype per class instead. Binding sets attributes on
    the copy only, and validation never mutates a field, so nothing leaks between
    messages or threads."""

    # Set on each class by _prototype(), read from that class's own __dict__ only.
    _prototype_fields: ClassVar[dict[str, serializers.Field]]

    @classmethod
    def _prototype(cls) -> dict[str, serializers.Field]:
        proto = cls.__dict__.get("_prototype_fields")
        if proto is None:
            proto = copy.deepcopy(cls._declared_fields)
            for field in proto.values():
                field.validators  # noqa: B018 - built once here, shared by the copies
            cls._prototype_fields = proto
        return proto

    def get_fields(self) -> dict[str, serializers.Field]:
        return {name: copy.copy(field) for name, field in self._prototype().items()}


class RegisterSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    capabilities = serializers.ListField(
        child=serializers.CharField(max_length=100), max_length=100, default=list
    )
    version = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")


class TypedSerializer(MessageSerializer):
    """Messages carry a `type`; when present it must be the expected one."""

    message_type = ""
    type = serializers.CharField(required=False, max_length=40)

    def validate_type(self, value: str) -> str:
        if value != self.message_type:
            raise serializers.ValidationError(f"expected {self.message_type!r}")
        return value


class LeaseRequestSerializer(TypedSerializer):
    message_type = "LeaseRequest"
    runner_id = serializers.CharField(max_length=40, required=False)
    capabilities = serializers.ListField(
        child=serializers.CharField(max_length=100), max_length=100, required=False
    )
    wait_seconds = serializers.IntegerField(min_value=0, max_value=20, default=0)


class AckSerializer(TypedSerializer):
    message_type = "AckLease"
    lease_id = serializers.CharField(**LEASE_ID)
    job_id = serializers.CharField(max_length=40, required=False)
    runner_id = serializers.CharField(max_length=40, required=False)
    accepted_at = serializers.CharField(max_length=40, required=False)


class ProgressSerializer(MessageSerializer):
    percent = serializers.FloatField(min_value=0, max_value=100, required=False, allow_null=True)
    current_step = serializers.CharField(
        max_length=500, required=False, allow_blank=True, allow_null=True
    )
    step_index = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    message = serializers.CharField(
        max_length=2000, required=False, allow_blank=True, allow_null=True
    )


class HeartbeatSerializer(TypedSerializer):
    message_type = "Heartbeat"
    lease_id = serializers.CharField(**LEASE_ID)
    runner_id = serializers.CharField(max_length=40, required=False)
    progress = ProgressSerializer(required=False, allow_null=True)
    log_cursor = serializers.DictField(required=False, allow_null=True)
    ts = serializers.CharField(max_length=40, required=False)


class ArtifactRefSerializer(MessageSerializer):
    type = serializers.ChoiceField(choices=ArtifactType.values, required=False)
    uri = serializers.CharField(max_length=1000)


def _artifact_refs() -> serializers.BaseSerializer:
    """At most 1000 artifact references: many=True passes max_length on to the
    ListSerializer it builds."""
    # The stubs' BaseSerializer.__init__ omits the list arguments many=True accepts.
    return ArtifactRefSerializer(many=True, required=False, max_length=1000)  # type: ignore[call-arg]


class CompleteSerializer(TypedSerializer):
    message_type = "Complete"
    lease_id = serializers.CharField(**LEASE_ID)
    runner_id = serializers.CharField(max_length=40, required=False)
    status = serializers.ChoiceField(choices=["SUCCEEDED", "FAILED", "TIMED_OUT"])
    exit_code = serializers.IntegerField(
        required=False, allow_null=True, min_value=-255, max_value=65535
    )
    timings = serializers.DictField(required=False)
    finished_at = serializers.CharField(max_length=40, required=False)
    artifacts = _artifact_refs()
    caches = serializers.ListField(child=serializers.DictField(), required=False, max_length=100)
    summary = serializers.CharField(
        max_length=10000, required=False, allow_blank=True, allow_null=True
    )
    image = serializers.DictField(required=False)

    def validate_image(self, value: dict) -> dict:
        """The image a container runner ran the job in, resolved to its digest."""
        digest, ref = value.get("digest"), value.get("ref", "")
        if not isinstance(digest, str) or not DIGEST.match(digest):
            raise serializers.ValidationError("digest must be sha256:<64 lowercase hex digits>")
        if not isinstance(ref, str | None) or len(ref or "") > 512:
            raise serializers.ValidationError("ref must be a string of at most 512 characters")
        return {"ref": ref or "", "digest": digest}


class CancelAckSerializer(TypedSerializer):
    message_type = "CancelAck"
    lease_id = serializers.CharField(**LEASE_ID)
    runner_id = serializers.CharField(max_length=40, required=False)
    final_status = serializers.ChoiceField(choices=["CANCELED"], required=False)
    ts = serializers.CharField(max_length=40, required=False)
    artifacts = _artifact_refs()
    summary = serializers.CharField(
        max_length=10000, required=False, allow_blank=True, allow_null=True
    )


class ArtifactUploadSerializer(TypedSerializer):
    message_type = "ArtifactUploadRequest"
    lease_id = serializers.CharField(**LEASE_ID)
    name = serializers.RegexField(r"^[A-Za-z0-9._-][A-Za-z0-9._/-]{0,254}$", max_length=255)
    artifact_type = serializers.ChoiceField(choices=ArtifactType.values)
    size = serializers.IntegerField(min_value=0)
    sha256 = serializers.RegexField(r"^[0-9a-f]{64}$", required=False)
    content_type = serializers.RegexField(
        r"^[A-Za-z0-9!#$&^_.+-]{1,100}/[A-Za-z0-9!#$&^_.+-]{1,100}"
        r"(; ?[A-Za-z0-9_.+-]{1,40}=[A-Za-z0-9_.+-]{1,60}){0,3}$",
        max_length=200,
        required=False,
        default="application/octet-stream",
    )

    def validate_name(self, value: str) -> str:
        parts = value.split("/")
        if ".." in value or "." in parts or "" in parts:
            raise serializers.ValidationError(
                "must be a relative path without '..', '.' or empty segments"
            )
        return value
