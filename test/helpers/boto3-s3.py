# boto3 as a real S3 client for the signing tests: python3 boto3-s3.py ENDPOINT OP ARGS...
# Credentials, region and the CA bundle come from the environment (AWS_*), as a user's would.
# Prints one JSON line with what the operation returned; exits 2 with the error code on a
# ClientError so the test can assert on S3's refusal.
import io
import json
import sys

import boto3
from botocore.exceptions import ClientError

endpoint, op, *args = sys.argv[1:]
s3 = boto3.client("s3", endpoint_url=endpoint)

try:
    if op == "put_object":
        bucket, key, size = args
        s3.put_object(Bucket=bucket, Key=key, Body=b"b" * int(size))
        print(json.dumps({"ok": True}))
    elif op == "get_object":
        bucket, key = args
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        print(json.dumps({"ok": True, "bytes": len(body), "distinct": sorted(set(body.decode("latin1")))}))
    elif op == "list_objects_v2":
        (bucket,) = args
        listed = s3.list_objects_v2(Bucket=bucket)
        print(json.dumps({"ok": True, "keys": [o["Key"] for o in listed.get("Contents", [])]}))
    elif op == "upload_fileobj":
        bucket, key, size = args
        # A file-like object of a size above boto3's 8 MiB multipart threshold takes the multipart path.
        s3.upload_fileobj(io.BytesIO(b"u" * int(size)), bucket, key)
        print(json.dumps({"ok": True}))
    else:
        print(json.dumps({"ok": False, "error": "unknown op " + op}))
        sys.exit(3)
except ClientError as error:
    print(json.dumps({"ok": False, "code": error.response["Error"]["Code"], "status": error.response["ResponseMetadata"]["HTTPStatusCode"]}))
    sys.exit(2)
