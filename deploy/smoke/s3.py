#!/opt/moto/bin/python
"""Smoke test only: the S3 store's side of deploy/smoke.sh, run inside the store's
container with moto's boto3.

    smoke-s3 serve               moto's S3 server on :9000
    smoke-s3 healthy             exit 0 when the server answers
    smoke-s3 create-bucket       the artifact bucket (idempotent; like minio/mc's mb)
    smoke-s3 list                every key of the bucket, one per line
"""

import os
import sys
import urllib.request

ENDPOINT = os.environ.get("S3_ENDPOINT", "http://127.0.0.1:9000")


def client():
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=ENDPOINT,
        region_name="us-east-1",
        aws_access_key_id=os.environ["MINIO_ROOT_USER"],
        aws_secret_access_key=os.environ["MINIO_ROOT_PASSWORD"],
    )


def main(command: str) -> int:
    bucket = os.environ.get("BUCKET", "deltaci-artifacts")
    if command == "serve":
        # Inside its container, on the Compose networks only (no port is published).
        argv = ["moto_server", "-H", "0.0.0.0", "-p", "9000"]  # noqa: S104
        os.execv("/opt/moto/bin/moto_server", argv)  # noqa: S606
    if command == "healthy":
        with urllib.request.urlopen(ENDPOINT + "/moto-api/", timeout=3) as resp:  # noqa: S310
            return 0 if resp.status == 200 else 1
    if command == "create-bucket":
        s3 = client()
        if bucket not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
            s3.create_bucket(Bucket=bucket)
        return 0
    if command == "list":
        pages = client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for page in pages:
            for item in page.get("Contents", []):
                print(item["Key"], item["Size"])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else ""))
