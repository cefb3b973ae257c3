"""A job's image under the repository's policy, decided at lease time: is the reference
valid, allowed and (when required) pinned by digest; and may this runner honour it.

A runner that can run a job in its image advertises `image:any` (the container
executor). `image_isolation` says what happens on one that cannot: `required` - it
never gets the job; `preferred` - it runs it on its host and the job's log and run
page say the image was not used; `off` - images are not enforced at all.
"""

import fnmatch
import re
from dataclasses import dataclass

from apps.policies.effective import EffectivePolicy

CONTAINER_CAPABILITY = "image:any"
MAX_REFERENCE = 512
# The OCI distribution reference grammar: [registry[:port]/]path[:tag][@algorithm:hex].
_HOST_PART = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_PORT = r"(?::[0-9]{1,5})"
# A first component is a registry only when it looks like one: localhost, a dotted
# name, or a name with a port (else `team/app` would read `team` as a host).
_REGISTRY = (
    rf"(?:(?:localhost{_PORT}?|{_HOST_PART}(?:\.{_HOST_PART})+{_PORT}?|{_HOST_PART}{_PORT})/)"
)
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REFERENCE = re.compile(
    rf"^(?P<name>{_REGISTRY}?{_COMPONENT}(?:/{_COMPONENT})*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-fA-F]{32,}))?"
)
_PINNED = re.compile(r"@sha256:[0-9a-f]{64}\Z")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}\Z")


@dataclass(frozen=True)
class Refusal:
    reason_code: str
    message: str


def reference_problem(image: str) -> str | None:
    """Why `image` is not a valid image reference, or None."""
    if len(image) > MAX_REFERENCE:
        return f"longer than {MAX_REFERENCE} characters"
    match = _REFERENCE.fullmatch(image)
    if match is None:
        return "not a valid image reference (registry/name[:tag][@sha256:digest])"
    if len(match.group("name")) > 255:
        return "its name is longer than 255 characters"
    return None


def refusal(image: str, policy: EffectivePolicy) -> Refusal | None:
    """Why the policy refuses to run a job with `image`, or None when it may run."""
    if image and (problem := reference_problem(image)):
        return Refusal("IMAGE_INVALID", f"image {image[:100]!r} is {problem}")
    if not any(fnmatch.fnmatchcase(image or "", pat) for pat in policy.allowed_images):
        return Refusal(
            "IMAGE_NOT_ALLOWED", f"image {image!r} is not allowed by the repository policy"
        )
    if image and policy.require_digest and not _PINNED.search(image):
        return Refusal(
            "IMAGE_NOT_PINNED",
            f"image {image!r} is not pinned by digest (name@sha256:…), which the "
            "repository policy requires",
        )
    return None


def host_run_note(image: str, caps: frozenset, policy: EffectivePolicy) -> str | None:
    """The plain-words reason a job's image will not be used on this runner (None when it
    will be, or the job has none). Raises NotHonoured when the runner may not take it."""
    if not image or CONTAINER_CAPABILITY in caps or policy.image_isolation == "off":
        return None
    if policy.image_isolation == "required":
        raise NotHonoured(image)
    executor = next((c.split(":", 1)[1] for c in caps if c.startswith("executor:")), "unknown")
    return (
        f"The image {image} was not used: this job ran directly on the runner's host "
        f"(executor {executor}), which has no container executor, and the repository's "
        "policy image_isolation=preferred allows that. Tools come from the host, not the image."
    )


class NotHonoured(Exception):
    """This runner cannot run the job in its image and the policy requires it."""
