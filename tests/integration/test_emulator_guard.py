"""No drive-by code execution: a web page the learner visits cannot drive the emulator, by cross-origin requests
(preflighted or "simple") or by DNS rebinding, while boto3, the kit's own S3 website and load balancer origins
and origins listed in SECURECART_ALLOWED_ORIGINS keep working. Against a real emulator process."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess

import pytest
from botocore.exceptions import ClientError
from emulator_fixture import client, ensure_role, start_emulator, zip_bytes

pytestmark = pytest.mark.integration

EVIL = "http://evil.example"
DEV = "http://dev.example:3000"
TEMPLATE = json.dumps({"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}})


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    handle = start_emulator(tmp_path_factory.mktemp("guard"), extra_env={"SECURECART_ALLOWED_ORIGINS": f" {DEV}/ ,"})
    yield handle
    handle.stop()


def request(handle, method: str, path: str, headers: dict[str, str], body: bytes | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", handle.port, timeout=30)
    conn.putrequest(method, path, skip_host="Host" in headers, skip_accept_encoding=True)
    for name, value in {**headers, **({"Content-Length": str(len(body))} if body is not None else {})}.items():
        conn.putheader(name, value)
    conn.endheaders(body)
    response = conn.getresponse()
    payload = response.read()
    conn.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, payload


def with_origin(handle, service: str, origin: str):
    """A boto3 client whose requests carry an Origin header, as a browser's would."""
    aws = client(handle, service)
    aws.meta.events.register("before-send", lambda request, **_: request.headers.__setitem__("Origin", origin))
    return aws


def preflight(handle, origin: str):
    return request(handle, "OPTIONS", "/2015-03-31/functions", {
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,x-amz-date"})


def test_a_preflight_from_a_foreign_origin_gets_no_cors_allowance(emulator):
    status, headers, _ = preflight(emulator, EVIL)
    assert status == 403
    assert not [name for name in headers if name.startswith("access-control-")], headers


def test_a_foreign_origin_cannot_create_a_function_or_a_stack(emulator):
    ensure_role(emulator)
    with pytest.raises(ClientError) as error:
        with_origin(emulator, "lambda", EVIL).create_function(
            FunctionName="drive-by", Runtime="python3.11", Role="arn:aws:iam::123456789012:role/securecart-test",
            Handler="app.handler", Code={"ZipFile": zip_bytes({"app.py": "def handler(e, c):\n    return 1\n"})})
    assert error.value.response["Error"]["Code"] == "AccessDeniedException"
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "drive-by" not in [f["FunctionName"] for f in client(emulator, "lambda").list_functions()["Functions"]]

    with pytest.raises(ClientError) as error:
        with_origin(emulator, "cloudformation", "null").create_stack(StackName="drive-by", TemplateBody=TEMPLATE)
    assert error.value.response["Error"]["Code"] == "AccessDenied"
    assert "drive-by" not in [s["StackName"] for s in client(emulator, "cloudformation").list_stacks()["StackSummaries"]]


def test_a_simple_form_post_from_a_foreign_origin_is_refused_before_moto(emulator):
    body = "Action=CreateQueue&QueueName=drive-by&Version=2012-11-05".encode()
    status, headers, payload = request(emulator, "POST", "/", {
        "Host": f"127.0.0.1:{emulator.port}", "Origin": EVIL, "Content-Type": "application/x-www-form-urlencoded",
        "Authorization": "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=0"}, body)
    assert status == 403 and b"<Code>AccessDenied</Code>" in payload and b"<ErrorResponse>" in payload
    assert "access-control-allow-origin" not in headers
    assert not client(emulator, "sqs").list_queues().get("QueueUrls")


@pytest.mark.parametrize("host", ["rebind.evil.example:{port}", "evil.example", "127.0.0.1.evil.example:{port}",
                                  "localhost.evil.example:{port}", "10.0.0.5:{port}"])
def test_a_foreign_host_name_is_refused(emulator, host):
    status, headers, payload = request(emulator, "GET", "/_localstack/health", {"Host": host.format(port=emulator.port)})
    assert status == 403 and b"<Code>AccessDenied</Code>" in payload and b"DNS rebinding" in payload


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "[::1]:{port}", "bucket.localhost:{port}",
                                  "127.0.0.2:{port}", "sync-127.0.0.1:{port}", "sync-localhost:{port}", "LOCALHOST"])
def test_loopback_host_names_are_served(emulator, host):
    status, _, payload = request(emulator, "GET", "/_localstack/health", {"Host": host.format(port=emulator.port)})
    assert status == 200 and b'"services"' in payload


def test_boto3_and_the_kits_own_origins_still_work(emulator):
    aws = client(emulator, "s3")
    aws.create_bucket(Bucket="guard-site")
    aws.put_bucket_website(Bucket="guard-site", WebsiteConfiguration={"IndexDocument": {"Suffix": "index.html"}})
    aws.put_object(Bucket="guard-site", Key="index.html", Body=b"<h1>site</h1>", ContentType="text/html")
    for origin in (f"http://127.0.0.1:{emulator.port}", f"http://localhost:{emulator.port}", DEV):
        status, headers, _ = preflight(emulator, origin)
        assert status == 200 and headers.get("access-control-allow-origin") in (origin, "*"), (origin, headers)
        assert with_origin(emulator, "s3", origin).head_bucket(Bucket="guard-site")["ResponseMetadata"]["HTTPStatusCode"] == 200
    status, _, payload = request(emulator, "GET", "/guard-site/", {"Origin": f"http://127.0.0.1:{emulator.port}"})
    assert status == 200 and payload == b"<h1>site</h1>"


@pytest.mark.skipif(shutil.which("aws") is None, reason="the AWS CLI is not installed")
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_the_aws_cli_still_works(emulator, host):
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    env.pop("AWS_PROFILE", None)
    run = subprocess.run(["aws", "--endpoint-url", f"http://{host}:{emulator.port}", "sqs", "create-queue",
                          "--queue-name", f"cli-{host.replace('.', '-')}"], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "QueueUrl" in run.stdout, run.stderr


def test_a_load_balancers_origin_is_allowed_for_its_life(emulator):
    ec2, elbv2 = client(emulator, "ec2"), client(emulator, "elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.79.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.79.1.0/24")["Subnet"]["SubnetId"]
    lb = elbv2.create_load_balancer(Name="guard-lb", Subnets=[subnet])["LoadBalancers"][0]
    origin = f"http://{lb['DNSName']}"
    assert preflight(emulator, origin)[0] == 200
    elbv2.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])
    assert preflight(emulator, origin)[0] == 403


def test_another_site_may_link_to_a_website_but_not_call_the_api(emulator):
    aws = client(emulator, "s3")
    aws.create_bucket(Bucket="guard-linked")
    aws.put_bucket_website(Bucket="guard-linked", WebsiteConfiguration={"IndexDocument": {"Suffix": "index.html"}})
    aws.put_object(Bucket="guard-linked", Key="index.html", Body=b"linked", ContentType="text/html")
    cross_site = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}
    assert request(emulator, "GET", "/guard-linked/", cross_site)[:3:2] == (200, b"linked")
    status, _, payload = request(emulator, "GET", "/?Action=ListQueues", {**cross_site, "Sec-Fetch-Mode": "no-cors"})
    assert status == 403 and b"<ErrorResponse>" in payload
    assert request(emulator, "GET", "/", {"Sec-Fetch-Site": "none"})[0] == 200  # typed in the address bar: ListBuckets
