"""S3 static website hosting on the local engine.

A bucket with a website configuration (PutBucketWebsite, or `WebsiteConfiguration` on a CloudFormation
`AWS::S3::Bucket`, which moto ignores) is served to browsers at `http://HOST:PORT/<bucket>/`: an unsigned GET or
HEAD of a folder serves its IndexDocument, a missing key the ErrorDocument with 404, as an AWS website endpoint
does. Signed API calls (boto3, the aws CLI, presigned URLs) go to moto unchanged.
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, unquote

from securecart_lab.emulator import hooks


DEFAULT_CONTENT_TYPE = "binary/octet-stream"
# Query parameters of S3 API calls: an unsigned request carrying one is an API call, not a page view.
_API_QUERY = {
    "acl", "cors", "delete", "delimiter", "encryption", "lifecycle", "list-type", "location", "logging", "marker",
    "max-keys", "notification", "policy", "prefix", "tagging", "uploadId", "uploads", "versioning", "versions",
    "website", "continuation-token", "object-lock", "publicAccessBlock", "ownershipControls", "attributes",
}
_SIGNATURE_QUERY = {"X-Amz-Signature", "X-Amz-Credential", "Signature", "AWSAccessKeyId"}


@dataclass(frozen=True)
class Website:
    index_suffix: str
    error_key: str | None


def parse_configuration(xml: bytes | str | None) -> Website | None:
    """IndexDocument suffix and ErrorDocument key of a stored website configuration (None without an index)."""
    if not xml:
        return None
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError:
        return None
    found: dict[str, str] = {}
    for section, field in (("IndexDocument", "Suffix"), ("ErrorDocument", "Key")):
        for element in root.iter():
            if _local(element.tag) == section:
                text = next(((child.text or "").strip() for child in element if _local(child.tag) == field), "")
                if text:
                    found[field] = text
    if "Suffix" not in found:
        return None
    return Website(found["Suffix"], found.get("Key"))


def _local(tag: str) -> str:
    return tag.rpartition("}")[-1]


def configuration_xml(properties: dict) -> bytes:
    """The PutBucketWebsite body for CloudFormation's WebsiteConfiguration property."""
    parts = []
    if properties.get("IndexDocument"):
        parts.append(f"<IndexDocument><Suffix>{_escape(properties['IndexDocument'])}</Suffix></IndexDocument>")
    if properties.get("ErrorDocument"):
        parts.append(f"<ErrorDocument><Key>{_escape(properties['ErrorDocument'])}</Key></ErrorDocument>")
    return ("<WebsiteConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">" + "".join(parts)
            + "</WebsiteConfiguration>").encode()


def _escape(text: Any) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def install(host: str, port: int) -> None:
    """Make CloudFormation store WebsiteConfiguration and GetAtt WebsiteURL name http://host:port/<bucket>."""
    create = hooks.original("s3.bucket.create_from_cfn")

    def create_bucket(cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs):
        bucket = create(resource_name, cloudformation_json, account_id, region_name, **kwargs)
        website = (cloudformation_json.get("Properties") or {}).get("WebsiteConfiguration")
        if website:
            backend = hooks.resolve("s3.backends")[account_id][bucket.partition]
            backend.put_bucket_website(bucket.name, configuration_xml(website))
        return bucket

    hooks.replace("s3.bucket.create_from_cfn", classmethod(create_bucket))
    hooks.replace("s3.bucket.website_url", property(lambda bucket: f"http://{host}:{port}/{bucket.name}"))
    _define_bucket_policy_model()


def _delete_policy(backend, bucket) -> None:
    if isinstance(bucket, str) and bucket in backend.buckets:
        backend.delete_bucket_policy(bucket)


def _define_bucket_policy_model() -> None:
    """AWS::S3::BucketPolicy, which moto's CloudFormation lacks: without it a template that makes its website
    bucket public-readable (as AWS requires) gets a stack whose resources cannot even be listed."""
    from moto.utilities.utils import get_partition

    def backend(account_id: str, region_name: str):
        return hooks.resolve("s3.backends")[account_id][get_partition(region_name)]

    class BucketPolicy(hooks.resolve("cfn.model")):
        def __init__(self, bucket: str):
            self.bucket = bucket

        @property
        def physical_resource_id(self) -> str:
            return self.bucket

        @staticmethod
        def cloudformation_name_type() -> str:
            return ""

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::S3::BucketPolicy"

        @classmethod
        def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
            properties = cloudformation_json["Properties"]
            policy = properties["PolicyDocument"]
            text = policy if isinstance(policy, str) else json.dumps(policy)
            backend(account_id, region_name).put_bucket_policy(properties["Bucket"], text.encode())
            return cls(properties["Bucket"])

        @classmethod
        def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json,
                                            account_id, region_name):
            return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id, region_name)

        def delete(self, account_id: str, region_name: str) -> None:
            """Stack deletion calls this on the parsed resource, whose Bucket is resolved (the template's is a Ref).
            A bucket deleted first took its policy with it."""
            _delete_policy(backend(account_id, region_name), self.bucket)

        @classmethod
        def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
            _delete_policy(backend(account_id, region_name), cloudformation_json["Properties"]["Bucket"])

        def is_created(self) -> bool:
            return True


def _loaded_s3_backends():
    """moto's S3 backends, or None while S3 has not loaded (then no bucket exists, and a GET need not load it)."""
    return hooks.resolve("s3.backends") if "moto.s3.models" in sys.modules else None


def _signed(environ: dict[str, Any], query: dict[str, list[str]]) -> bool:
    return bool(environ.get("HTTP_AUTHORIZATION")) or bool(_SIGNATURE_QUERY & set(query))


class S3WebsiteMiddleware:
    """Serves unsigned GET/HEAD requests for website buckets; passes every other request to `app` (moto)."""

    def __init__(self, app: Callable[..., Iterable[bytes]], backends: Callable[[], Any] | None = None):
        self.app = app
        self.backends = backends or _loaded_s3_backends

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD")
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        if method in ("GET", "HEAD") and not _signed(environ, query) and not _API_QUERY & set(query):
            path = unquote(environ.get("PATH_INFO") or "/")
            name, _, key = path.lstrip("/").partition("/")
            site = self._website(name) if name else None
            if site is not None:
                backend, website = site
                return self._serve(backend, name, key, "/" in path.lstrip("/"), website, method, start_response)
        return self.app(environ, start_response)

    def _website(self, name: str) -> tuple[Any, Website] | None:
        backends = self.backends()
        owner = backends.bucket_accounts.get(name) if backends is not None else None
        if owner is None:
            return None
        partition, account_id = owner
        backend = backends[account_id][partition]
        bucket = backend.buckets.get(name)
        website = parse_configuration(bucket.website_configuration) if bucket is not None else None
        return (backend, website) if website else None

    def _serve(self, backend, bucket: str, key: str, has_slash: bool, website: Website, method: str, start_response):
        if not has_slash:
            # /bucket -> /bucket/: the index page's relative links resolve inside the bucket.
            return _respond(start_response, "302 Found", [("Location", f"/{quote(bucket)}/")], b"", method)
        wanted = key + website.index_suffix if key == "" or key.endswith("/") else key
        found = backend.get_object(bucket, wanted)
        if found is None and not key.endswith("/") and backend.get_object(bucket, f"{key}/{website.index_suffix}"):
            return _respond(start_response, "302 Found", [("Location", f"/{quote(bucket)}/{quote(key)}/")], b"", method)
        if found is not None:
            return _respond(start_response, "200 OK", _object_headers(found), found.value, method)
        error = backend.get_object(bucket, website.error_key) if website.error_key else None
        if error is not None:
            return _respond(start_response, "404 Not Found", _object_headers(error), error.value, method)
        body = f"404 Not Found: no object {wanted} in bucket {bucket}\n".encode()
        return _respond(start_response, "404 Not Found", [("Content-Type", "text/plain; charset=utf-8")], body, method)


def _object_headers(obj) -> list[tuple[str, str]]:
    return [("Content-Type", obj.metadata.get("Content-Type") or DEFAULT_CONTENT_TYPE), ("ETag", obj.etag),
            ("Last-Modified", obj.last_modified_RFC1123)]


def _respond(start_response, status: str, headers: list[tuple[str, str]], body: bytes, method: str) -> Iterable[bytes]:
    start_response(status, [*headers, ("Content-Length", str(len(body)))])
    return [body] if method == "GET" else []
