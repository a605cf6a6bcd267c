"""S3 static website hosting in the embedded emulator: browsers get index and error documents, API calls get moto."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from emulator_fixture import client, running_emulator

from securecart_lab.emulator import hooks, s3website
from securecart_lab.labs import stacks

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def emulator():
    with running_emulator() as handle:
        yield handle


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def browse(url: str, method: str = "GET") -> tuple[int, dict, bytes]:
    """An unsigned request, as a browser sends it (redirects not followed)."""
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, method=method), timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def put(s3, bucket: str, key: str, body: str, content_type: str) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode(), ContentType=content_type)


@pytest.fixture(scope="module")
def site(emulator):
    s3 = client(emulator, "s3")
    s3.create_bucket(Bucket="shop-site")
    s3.put_bucket_website(Bucket="shop-site", WebsiteConfiguration={
        "IndexDocument": {"Suffix": "index.html"}, "ErrorDocument": {"Key": "error.html"}})
    put(s3, "shop-site", "index.html", "<h1>home</h1>", "text/html")
    put(s3, "shop-site", "app.js", "console.log(1)", "application/javascript")
    put(s3, "shop-site", "error.html", "<h1>gone</h1>", "text/html")
    put(s3, "shop-site", "docs/index.html", "<h1>docs</h1>", "text/html")
    return f"{emulator.endpoint_url}/shop-site"


def test_a_folder_serves_its_index_document_with_its_content_type(site):
    status, headers, body = browse(f"{site}/")
    assert (status, headers["Content-Type"], body) == (200, "text/html", b"<h1>home</h1>")
    assert browse(f"{site}/docs/")[2] == b"<h1>docs</h1>"
    status, headers, body = browse(f"{site}/app.js")
    assert (status, headers["Content-Type"], body) == (200, "application/javascript", b"console.log(1)")
    status, headers, body = browse(f"{site}/", "HEAD")
    assert (status, headers["Content-Length"], body) == (200, "13", b"")


def test_folders_without_a_slash_redirect_so_relative_links_resolve(site):
    status, headers, _ = browse(site)
    assert (status, headers["Location"]) == (302, "/shop-site/")
    assert browse(f"{site}/docs")[1]["Location"] == "/shop-site/docs/"


def test_a_missing_key_serves_the_error_document_with_404(site, emulator):
    status, headers, body = browse(f"{site}/nothing/here.html")
    assert (status, headers["Content-Type"], body) == (404, "text/html", b"<h1>gone</h1>")
    s3 = client(emulator, "s3")
    s3.create_bucket(Bucket="bare-site")
    s3.put_bucket_website(Bucket="bare-site", WebsiteConfiguration={"IndexDocument": {"Suffix": "index.html"}})
    status, _, body = browse(f"{emulator.endpoint_url}/bare-site/")
    assert status == 404 and b"no object index.html in bucket bare-site" in body


def test_signed_calls_and_buckets_without_website_go_to_moto(site, emulator):
    s3 = client(emulator, "s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="shop-site")["Contents"]]
    assert keys == ["app.js", "docs/index.html", "error.html", "index.html"]
    assert s3.get_object(Bucket="shop-site", Key="app.js")["Body"].read() == b"console.log(1)"
    presigned = s3.generate_presigned_url("get_object", Params={"Bucket": "shop-site", "Key": "error.html"})
    assert browse(presigned)[:1] == (200,)
    assert b"<ListBucketResult" in browse(f"{site}/?list-type=2")[2]
    s3.create_bucket(Bucket="plain-bucket")
    put(s3, "plain-bucket", "index.html", "<h1>plain</h1>", "text/html")
    assert b"<h1>plain</h1>" not in browse(f"{emulator.endpoint_url}/plain-bucket/")[2]


def test_cloudformation_website_configuration_is_stored_and_served(emulator):
    template = {
        "Resources": {"Site": {"Type": "AWS::S3::Bucket", "Properties": {
            "BucketName": "cfn-site",
            "WebsiteConfiguration": {"IndexDocument": "index.html", "ErrorDocument": "404.html"}}}},
        "Outputs": {"WebsiteURL": {"Value": {"Fn::GetAtt": ["Site", "WebsiteURL"]}}},
    }
    cf = client(emulator, "cloudformation")
    cf.create_stack(StackName="site-stack", TemplateBody=json.dumps(template))
    outputs = cf.describe_stacks(StackName="site-stack")["Stacks"][0]["Outputs"]
    assert outputs[0]["OutputValue"] == f"http://127.0.0.1:{emulator.port}/cfn-site"
    s3 = client(emulator, "s3")
    website = s3.get_bucket_website(Bucket="cfn-site")
    assert (website["IndexDocument"], website["ErrorDocument"]) == ({"Suffix": "index.html"}, {"Key": "404.html"})
    put(s3, "cfn-site", "index.html", "<h1>cfn</h1>", "text/html")
    assert browse(f"{outputs[0]['OutputValue']}/")[2] == b"<h1>cfn</h1>"


def test_configuration_round_trip_and_hook_points():
    parsed = s3website.parse_configuration(s3website.configuration_xml({"IndexDocument": "a&b.html"}))
    assert parsed == s3website.Website("a&b.html", None)
    assert s3website.parse_configuration(b"<WebsiteConfiguration><RedirectAllRequestsTo><HostName>x</HostName>"
                                         b"</RedirectAllRequestsTo></WebsiteConfiguration>") is None
    for name in ("s3.bucket.create_from_cfn", "s3.bucket.website_url", "s3.backends"):
        assert hooks.resolve(name) is not None


def test_cloudformation_bucket_policy_is_applied_and_removed_with_the_stack(emulator):
    # moto's CloudFormation has no AWS::S3::BucketPolicy: the stack used to complete with resources it could not list.
    import time

    cf, s3 = client(emulator, "cloudformation"), client(emulator, "s3")
    statement = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::public-site/*"}
    template = {"Resources": {
        "Site": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "public-site"}},
        "SitePolicy": {"Type": "AWS::S3::BucketPolicy", "Properties": {
            "Bucket": {"Ref": "Site"}, "PolicyDocument": {"Version": "2012-10-17", "Statement": [statement]}}},
    }}
    cf.create_stack(StackName="public-site", TemplateBody=json.dumps(template))
    deadline = time.monotonic() + 10
    while cf.describe_stacks(StackName="public-site")["Stacks"][0]["StackStatus"].endswith("IN_PROGRESS"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    resources = cf.describe_stack_resources(StackName="public-site")["StackResources"]
    assert {r["ResourceType"] for r in resources} == {"AWS::S3::Bucket", "AWS::S3::BucketPolicy"}
    assert json.loads(s3.get_bucket_policy(Bucket="public-site")["Policy"])["Statement"] == [statement]
    cf.delete_stack(StackName="public-site")
    assert stacks.wait(cf, "public-site") is None
    assert "public-site" not in {b["Name"] for b in s3.list_buckets()["Buckets"]}
