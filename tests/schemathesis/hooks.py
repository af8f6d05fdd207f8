"""Schemathesis hooks for `.ci/run`: sign every request with NCP signature
v2 over the path and query exactly as sent, and point path parameters at
resources the script seeded, so that generated requests reach real sites,
policies and content rather than only 404s.

Reads MULTIDRM_ACCESS_KEY, MULTIDRM_SECRET_KEY and the seeded ids
SEED_SITE_ID, SEED_POLICY_ID, SEED_CONTENT_ID and SEED_KMS_TOKEN from the
environment; counts the requests it signed into SCHEMATHESIS_COUNT_FILE.
"""

import base64
import hashlib
import hmac
import os
import random
import time

import requests
import schemathesis

ACCESS_KEY = os.environ["MULTIDRM_ACCESS_KEY"]
SECRET_KEY = os.environ["MULTIDRM_SECRET_KEY"].encode()
SEEDED = {
    "siteId": os.environ["SEED_SITE_ID"],
    "policyId": int(os.environ["SEED_POLICY_ID"]),
    "contentId": os.environ["SEED_CONTENT_ID"],
    "kmsToken": os.environ["SEED_KMS_TOKEN"],
}
COUNT_FILE = os.environ.get("SCHEMATHESIS_COUNT_FILE")


class NcpSignature(requests.auth.AuthBase):
    """Adds the three x-ncp-* headers, signing the prepared request's target."""

    def __call__(self, request):
        timestamp = str(int(time.time() * 1000))
        message = f"{request.method} {request.path_url}\n{timestamp}\n{ACCESS_KEY}"
        digest = hmac.new(SECRET_KEY, message.encode(), hashlib.sha256).digest()
        request.headers["x-ncp-apigw-timestamp"] = timestamp
        request.headers["x-ncp-iam-access-key"] = ACCESS_KEY
        request.headers["x-ncp-apigw-signature-v2"] = base64.b64encode(digest).decode()
        if COUNT_FILE:
            with open(COUNT_FILE, "a") as counter:
                counter.write(".")
        return request


@schemathesis.hook
def before_call(context, case, kwargs):
    kwargs["auth"] = NcpSignature()


@schemathesis.hook
def map_path_parameters(context, path_parameters):
    """Three requests in four go to a seeded resource; the rest keep the
    generated value, which exercises the not-found and malformed paths."""
    for name, value in SEEDED.items():
        if path_parameters and name in path_parameters and random.random() < 0.75:
            path_parameters[name] = value
    return path_parameters


@schemathesis.hook
def map_query(context, query):
    if query and "siteId" in query and random.random() < 0.75:
        query["siteId"] = SEEDED["siteId"]
    return query
