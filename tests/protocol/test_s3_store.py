"""The S3 artifact store against moto's server on loopback: a presigned PUT for exactly
one key under the attempt's prefix, valid at most 15 minutes; a real PUT; Complete
records it; the finalised log lands in the bucket."""

import hashlib
import time
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from apps.artifacts.models import Artifact
from apps.runs.models import JobAttempt
from tests.conftest import job_spec

BUCKET = "deltaci-test"


@pytest.fixture(scope="module")
def moto_endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(moto_endpoint, settings):
    client = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=BUCKET)
    settings.ARTIFACT_STORAGE = "s3"
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "endpoint_url": moto_endpoint,
                "access_key": "testing",
                "secret_key": "testing",
                "region_name": "us-east-1",
                "querystring_expire": 900,
                "file_overwrite": True,
                "signature_version": "s3v4",
            },
        },
    }
    yield client
    for obj in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=obj["Key"])
    client.delete_bucket(Bucket=BUCKET)


def keys(client) -> list[str]:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def test_an_artifact_goes_to_s3_through_a_presigned_put(
    s3, make_run, proto, moto_endpoint, django_capture_on_commit_callbacks
):
    make_run([job_spec("build")])
    g = proto.start()
    lid = g["lease_id"]
    assert proto.log(lid, 0, b"building\n").status_code == 200
    data = b"<testsuite tests='1'/>"
    r = proto.artifact(
        lid,
        "reports/junit.xml",
        len(data),
        artifact_type="junit",
        sha256=hashlib.sha256(data).hexdigest(),
        content_type="application/xml",
    )
    assert r.status_code == 201, r.content
    answer = r.json()
    attempt = JobAttempt.objects.get()
    key = f"runs/{attempt.run_id}/jobs/{attempt.job_id}/attempts/1/reports/junit.xml"
    assert answer["uri"] == f"artifact:{key}"
    url = urlsplit(answer["upload"]["url"])
    assert f"{url.scheme}://{url.netloc}" == moto_endpoint
    assert url.path == f"/{BUCKET}/{key}"  # exactly one key
    query = parse_qs(url.query)
    if "X-Amz-Expires" in query:  # SigV4
        assert 0 < int(query["X-Amz-Expires"][0]) <= 900
    else:  # SigV2: an absolute expiry
        assert 0 < int(query["Expires"][0]) - time.time() <= 900
    assert answer["upload"]["method"] == "PUT"

    put = requests.put(
        answer["upload"]["url"], data=data, headers=answer["upload"]["headers"], timeout=10
    )
    assert put.status_code == 200, put.text
    assert keys(s3) == [key]

    with django_capture_on_commit_callbacks(execute=True):
        done = proto.complete(lid, artifacts=[{"type": "junit", "uri": answer["uri"]}])
    assert done.status_code == 200
    assert Artifact.objects.get(name="reports/junit.xml").recorded
    log_key = f"runs/{attempt.run_id}/jobs/{attempt.job_id}/attempts/1/log.txt"
    assert keys(s3) == [log_key, key]
    body = s3.get_object(Bucket=BUCKET, Key=log_key)["Body"].read()
    assert body == b"building\n"
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == data


def test_a_reference_to_a_missing_s3_object_is_not_recorded(s3, make_run, proto):
    make_run([job_spec("build")])
    lid = proto.start()["lease_id"]
    answer = proto.artifact(lid, "never-uploaded.bin", 10).json()
    assert (
        proto.complete(lid, artifacts=[{"type": "file", "uri": answer["uri"]}]).status_code == 200
    )
    assert not Artifact.objects.get(name="never-uploaded.bin").recorded


def test_a_presigned_put_is_write_once(s3, make_run, proto):
    """A presigned URL cannot be withdrawn when its attempt ends: it carries a signed
    If-None-Match so an existing (finished) object is never replaced."""
    make_run([job_spec("build")])
    lid = proto.start()["lease_id"]
    answer = proto.artifact(lid, "out.bin", 5).json()
    assert answer["upload"]["headers"]["If-None-Match"] == "*"
    up = answer["upload"]
    assert requests.put(up["url"], data=b"first", headers=up["headers"], timeout=10).ok
    done = proto.complete(lid, artifacts=[{"type": "file", "uri": answer["uri"]}])
    assert done.status_code == 200
    again = requests.put(up["url"], data=b"evil!", headers=up["headers"], timeout=10)
    assert again.status_code == 412, again.text
    assert "if-none-match" in parse_qs(urlsplit(up["url"]).query)["X-Amz-SignedHeaders"][0]
    key = answer["uri"].removeprefix("artifact:")
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"first"
