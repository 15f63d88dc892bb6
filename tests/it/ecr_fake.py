#!/usr/bin/env python3
"""A loopback Amazon ECR API (and the STS call EKS pods make), written from
the published API references, for hoist's tests.

ECR: JSON 1.1, POST / with X-Amz-Target AmazonEC2ContainerRegistry_V20150921.*
(DescribeImages with maxResults/nextToken and filter.tagStatus,
BatchDeleteImage with failures, GetAuthorizationToken), errors as
{"__type": ..., "message": ...}. Every request's SigV4 signature is checked
with botocore's signer, independently of hoist's. The images themselves are
those of a real docker-registry: read from its storage directory (push times
are the registry's revision link times) and deleted through its API as user
AWS, whose password GetAuthorizationToken hands out.

STS: AssumeRoleWithWebIdentity (query protocol, unsigned, XML answer).

Usage: ecr_fake.py CONFIG.json. Prints the port it listens on, then serves
until killed. Every request is appended as a JSON line to config["log"].
"""

import base64
import datetime
import json
import os
import shutil
import sys
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

CONFIG = json.load(open(sys.argv[1]))
LOCK = threading.Lock()
TARGET_PREFIX = "AmazonEC2ContainerRegistry_V20150921."
INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)


class ApiError(Exception):
    def __init__(self, status, kind, message):
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


def log(entry):
    with LOCK, open(CONFIG["log"], "a") as out:
        out.write(json.dumps(entry) + "\n")


# --- SigV4, checked with botocore -------------------------------------------


def parse_authorization(value):
    if not value or not value.startswith("AWS4-HMAC-SHA256 "):
        raise ApiError(403, "MissingAuthenticationTokenException",
                       "Missing Authentication Token")
    fields = {}
    for part in value[len("AWS4-HMAC-SHA256 "):].split(","):
        key, _, item = part.strip().partition("=")
        fields[key] = item
    return fields


def check_signature(handler, body):
    fields = parse_authorization(handler.headers.get("Authorization"))
    access_key, date, region, service, terminator = fields["Credential"].split("/")
    keys = CONFIG["keys"]
    if access_key not in keys:
        raise ApiError(400, "UnrecognizedClientException",
                       "The security token included in the request is invalid.")
    secret, token = keys[access_key]["secret"], keys[access_key].get("token")
    sent_token = handler.headers.get("X-Amz-Security-Token")
    if token != sent_token:
        raise ApiError(400, "UnrecognizedClientException",
                       "The security token included in the request is invalid.")
    if region != CONFIG["region"] or service != "ecr" or terminator != "aws4_request":
        raise ApiError(403, "InvalidSignatureException",
                       f"Credential should be scoped to a valid region and service ecr, not {region}/{service}")
    stamp = handler.headers.get("X-Amz-Date", "")
    signed_at = datetime.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(
        tzinfo=datetime.timezone.utc)
    if abs((datetime.datetime.now(datetime.timezone.utc) - signed_at).total_seconds()) > 300:
        raise ApiError(403, "InvalidSignatureException", "Signature expired")
    if not stamp.startswith(date):
        raise ApiError(403, "InvalidSignatureException", "Date mismatch")
    signed = fields["SignedHeaders"].split(";")
    for required in ("host", "x-amz-date", "x-amz-target"):
        if required not in signed:
            raise ApiError(403, "InvalidSignatureException", f"{required} is not signed")
    headers = {name: handler.headers.get(name, "") for name in signed}
    url = "http://" + handler.headers["Host"] + handler.path
    request = AWSRequest(method=handler.command, url=url, data=body, headers=headers)
    request.context["timestamp"] = stamp
    signer = SigV4Auth(Credentials(access_key, secret, token), "ecr", region)
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if expected != fields["Signature"]:
        raise ApiError(403, "InvalidSignatureException",
                       "The request signature we calculated does not match the signature you provided.")
    return access_key


# --- The registry's storage and API -----------------------------------------


def repository_directory(name):
    path = os.path.join(CONFIG["storage"], "repositories", name, "_manifests")
    if not os.path.isdir(os.path.join(path, "revisions")):
        raise ApiError(400, "RepositoryNotFoundException",
                       f"The repository with name '{name}' does not exist in the registry "
                       f"with id '{CONFIG['account']}'")
    return path


def blob(digest):
    hexadecimal = digest.split(":", 1)[1]
    path = os.path.join(CONFIG["storage"], "blobs", "sha256", hexadecimal[:2], hexadecimal, "data")
    with open(path, "rb") as data:
        return data.read()


def images(name):
    """(digest, tags, pushed_at, media_type, size) of every manifest, by digest."""
    manifests = repository_directory(name)
    tags = {}
    tags_directory = os.path.join(manifests, "tags")
    for tag in sorted(os.listdir(tags_directory)) if os.path.isdir(tags_directory) else []:
        link = os.path.join(tags_directory, tag, "current", "link")
        if os.path.exists(link):
            tags.setdefault(open(link).read().strip(), []).append(tag)
    found = []
    revisions = os.path.join(manifests, "revisions", "sha256")
    for hexadecimal in sorted(os.listdir(revisions)):
        link = os.path.join(revisions, hexadecimal, "link")
        if not os.path.exists(link):
            continue
        digest = "sha256:" + hexadecimal
        content = blob(digest)
        media_type = json.loads(content).get("mediaType", "")
        found.append((digest, tags.get(digest, []), os.stat(link).st_mtime, media_type, len(content)))
    return found


def registry_delete(name, digest):
    request = urllib.request.Request(
        f"{CONFIG['registry']}/v2/{name}/manifests/{digest}", method="DELETE")
    credentials = base64.b64encode(f"AWS:{CONFIG['registry_password']}".encode()).decode()
    request.add_header("Authorization", "Basic " + credentials)
    with urllib.request.urlopen(request) as answer:
        return answer.status


def listed_by_an_index(name, digest, going):
    for other, _, _, media_type, _ in images(name):
        if other in going or media_type not in INDEX_TYPES:
            continue
        if any(child.get("digest") == digest for child in json.loads(blob(other)).get("manifests", [])):
            return other
    return None


# --- ECR operations ------------------------------------------------------------


def check_registry_id(request):
    given = request.get("registryId")
    if given is not None and given != CONFIG["account"]:
        raise ApiError(400, "InvalidParameterException", f"Invalid registryId {given}")


def describe_images(request):
    check_registry_id(request)
    name = request["repositoryName"]
    status = request.get("filter", {}).get("tagStatus", "ANY")
    everything = images(name)
    if status == "TAGGED":
        everything = [image for image in everything if image[1]]
    elif status == "UNTAGGED":
        everything = [image for image in everything if not image[1]]
    size = min(int(request.get("maxResults", 100)), int(CONFIG.get("page_size", 1000)))
    start = int(base64.b64decode(request["nextToken"]).decode()) if request.get("nextToken") else 0
    page = everything[start:start + size]
    details = []
    for digest, tags, pushed_at, media_type, length in page:
        detail = {
            "registryId": CONFIG["account"],
            "repositoryName": name,
            "imageDigest": digest,
            "imageSizeInBytes": length,
            "imagePushedAt": pushed_at,
            "imageManifestMediaType": media_type,
        }
        if tags:
            detail["imageTags"] = tags
        details.append(detail)
    answer = {"imageDetails": details}
    if start + size < len(everything):
        answer["nextToken"] = base64.b64encode(str(start + size).encode()).decode()
    return answer


def batch_delete_image(request):
    check_registry_id(request)
    name = request["repositoryName"]
    identifiers = request["imageIds"]
    if not 1 <= len(identifiers) <= 100:
        raise ApiError(400, "InvalidParameterException", "imageIds must hold 1 to 100 ids")
    deleted, failures = [], []
    with LOCK:
        for identifier in identifiers:
            failure = delete_one(name, identifier, deleted)
            if failure:
                failures.append({"imageId": identifier, "failureCode": failure[0],
                                 "failureReason": failure[1]})
    return {"imageIds": deleted, "failures": failures}


def delete_one(name, identifier, deleted):
    """Deletes one image id as ECR does: a tag alone while the image has
    others, else the image; an image an index lists stays (ECR refuses)."""
    known = {digest: tags for digest, tags, _, _, _ in images(name)}
    tag = identifier.get("imageTag")
    digest = identifier.get("imageDigest")
    if tag is not None:
        digest = next((d for d, tags in known.items() if tag in tags), None)
    if digest not in known:
        return ("ImageNotFound", "Requested image not found")
    if tag is not None and len(known[digest]) > 1:
        shutil.rmtree(os.path.join(repository_directory(name), "tags", tag))
        deleted.append({"imageDigest": digest, "imageTag": tag})
        return None
    parent = listed_by_an_index(name, digest, {digest})
    if parent:
        return ("ImageReferencedByManifestList",
                f"Requested image referenced by manifest list: [{parent}]")
    registry_delete(name, digest)
    deleted.extend({"imageDigest": digest, "imageTag": other} for other in known[digest])
    if not known[digest]:
        deleted.append({"imageDigest": digest})
    return None


def get_authorization_token(_request):
    token = base64.b64encode(f"AWS:{CONFIG['registry_password']}".encode()).decode()
    return {"authorizationData": [{
        "authorizationToken": token,
        "expiresAt": time.time() + 12 * 3600,
        "proxyEndpoint": CONFIG["registry"],
    }]}


OPERATIONS = {
    "DescribeImages": describe_images,
    "BatchDeleteImage": batch_delete_image,
    "GetAuthorizationToken": get_authorization_token,
}


# --- STS ---------------------------------------------------------------------------


def assume_role_with_web_identity(form):
    expected = CONFIG.get("web_identity")
    if not expected or form.get("WebIdentityToken") != expected["token"]:
        return 400, sts_error("InvalidIdentityToken", "The web identity token is not valid")
    if form.get("RoleArn") != expected["role_arn"]:
        return 403, sts_error("AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity")
    issued = expected["issue"]
    with LOCK:
        CONFIG["keys"][issued["access_key_id"]] = {"secret": issued["secret"], "token": issued["token"]}
    expires = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1))
    return 200, (
        '<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
        "<AssumeRoleWithWebIdentityResult><Credentials>"
        f"<AccessKeyId>{issued['access_key_id']}</AccessKeyId>"
        f"<SecretAccessKey>{issued['secret']}</SecretAccessKey>"
        f"<SessionToken>{issued['token']}</SessionToken>"
        f"<Expiration>{expires.strftime('%Y-%m-%dT%H:%M:%SZ')}</Expiration>"
        "</Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>"
    )


def sts_error(code, message):
    return (f'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
            f"<Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error></ErrorResponse>")


# --- HTTP ---------------------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *_):
        pass

    def answer(self, status, body, content_type):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        target = self.headers.get("X-Amz-Target", "")
        if not target:
            form = dict(urllib.parse.parse_qsl(body.decode()))
            log({"service": "sts", "action": form.get("Action"),
                 "signed": "Authorization" in self.headers})
            status, text = assume_role_with_web_identity(form)
            return self.answer(status, text, "text/xml")
        entry = {"service": "ecr", "target": target}
        try:
            if self.path != "/":
                raise ApiError(404, "UnknownOperationException", f"no such path {self.path}")
            entry["access_key"] = check_signature(self, body)
            operation = OPERATIONS.get(target[len(TARGET_PREFIX):]) if target.startswith(TARGET_PREFIX) else None
            if operation is None:
                raise ApiError(400, "UnknownOperationException", f"Unknown operation {target}")
            answer = operation(json.loads(body or b"{}"))
            entry["status"] = 200
            log(entry)
            return self.answer(200, json.dumps(answer), "application/x-amz-json-1.1")
        except ApiError as error:
            entry.update(status=error.status, error=error.kind)
            log(entry)
            text = json.dumps({"__type": error.kind, "message": error.message})
            return self.answer(error.status, text, "application/x-amz-json-1.1")


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
