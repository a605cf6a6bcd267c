"""The local load balancer's HTTP/1.1 front end, over raw sockets: chunked bodies reach the target whole (no request
smuggling), malformed requests get 400 without a traceback, idle half-sent requests are closed, a burst of
connections is accepted at once, and only loopback Host names and the kit's origins get through."""

from __future__ import annotations

import json
import re
import socket
import statistics
import threading
import time
import urllib.request

import pytest

from securecart_lab import config

from emulator_fixture import wait_for

pytestmark = pytest.mark.integration


def exchange(port: int, raw: bytes, timeout: float = 5.0) -> bytes:
    """Send raw bytes, read until the server closes or `timeout` passes; everything the server answered."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(raw)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except socket.timeout:
            pass
    return b"".join(chunks)


def statuses(answer: bytes) -> list[int]:
    return [int(code) for code in re.findall(rb"HTTP/1\.[01] (\d{3}) ", answer)]


@pytest.fixture(scope="module")
def vpc_subnets(aws):
    ec2 = aws("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.78.0.0/16")["Vpc"]["VpcId"]
    return vpc, [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.78.{i}.0/24", AvailabilityZone=f"us-east-1{az}")["Subnet"]["SubnetId"]
                 for i, az in enumerate("ab")]


@pytest.fixture(scope="module")
def fixed(aws, vpc_subnets):
    """A load balancer whose listener answers 200 "fixed" itself: the front end alone, no target."""
    elbv2 = aws("elbv2")
    lb = elbv2.create_load_balancer(Name="http-fixed", Subnets=vpc_subnets[1])["LoadBalancers"][0]
    elbv2.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80, DefaultActions=[
        {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "200", "ContentType": "text/plain", "MessageBody": "fixed"}}])
    yield lb
    elbv2.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])


@pytest.fixture(scope="module")
def app_balancer(aws, settings, vpc_subnets):
    """A load balancer forwarding to one healthy SecureCart app instance."""
    vpc, subnets = vpc_subnets
    elbv2 = aws("elbv2")
    tg = elbv2.create_target_group(Name="http-app", Protocol="HTTP", Port=8080, VpcId=vpc, HealthCheckPath="/health",
                                   HealthCheckIntervalSeconds=5, HealthyThresholdCount=2)["TargetGroups"][0]["TargetGroupArn"]
    lb = elbv2.create_load_balancer(Name="http-app", Subnets=subnets)["LoadBalancers"][0]
    elbv2.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                          DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
    user_data = (f"#!/bin/bash\nexport DB_HOST=127.0.0.1 DB_PORT={settings.pg_port} DB_NAME={config.DB_NAME} "
                 f"DB_USER={config.DB_USER} DB_PASSWORD='{config.DB_PASSWORD}'\nexec python3 -m securecart_lab.app\n")
    instance = aws("ec2").run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=subnets[0],
                                        UserData=user_data)["Instances"][0]["InstanceId"]
    elbv2.register_targets(TargetGroupArn=tg, Targets=[{"Id": instance}])
    wait_for(lambda: elbv2.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"][0]["TargetHealth"]["State"] == "healthy",
             timeout=30, what="a healthy target")
    yield lb
    aws("ec2").terminate_instances(InstanceIds=[instance])
    elbv2.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])


def port_of(lb) -> int:
    return int(lb["DNSName"].rpartition(":")[2])


def test_a_chunked_post_reaches_the_app_whole_and_the_chunks_are_not_a_second_request(app_balancer):
    port = port_of(app_balancer)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/products?limit=1", timeout=10) as response:
        sku = json.load(response)["products"][0]["sku"]
    body = json.dumps({"customerEmail": "chunked@example.com", "items": [{"sku": sku, "quantity": 1}],
                       "cardToken": "tok_visa_ok"}).encode()
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:10], body[10:])) + b"0\r\n\r\n"
    raw = (b"POST /api/orders HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n" + chunked
           + b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    answer = exchange(port, raw, timeout=15)
    assert statuses(answer) == [201, 200], answer[:1200]
    assert b'"orderId"' in answer


@pytest.mark.parametrize("request_head", [
    b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: abc\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Bad: a\x01b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header\r\n\r\n",
], ids=["content-length-abc", "content-length-minus-1", "control-character", "no-colon"])
def test_a_malformed_request_gets_400_quickly_and_no_traceback(fixed, engine, request_head):
    started = time.monotonic()
    answer = exchange(port_of(fixed), request_head, timeout=5)
    assert statuses(answer)[:1] == [400], answer[:300]
    assert time.monotonic() - started < 3
    assert "Traceback" not in engine.log_path.read_text(errors="replace")


def test_a_body_over_the_limit_is_refused_before_it_is_read(fixed):
    answer = exchange(port_of(fixed), b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000000000\r\n\r\n", timeout=5)
    assert statuses(answer) == [413], answer[:300]


def test_an_idle_half_sent_request_is_closed_after_the_idle_timeout(aws, fixed):
    aws("elbv2").modify_load_balancer_attributes(LoadBalancerArn=fixed["LoadBalancerArn"],
                                                 Attributes=[{"Key": "idle_timeout.timeout_seconds", "Value": "2"}])
    time.sleep(0.5)  # the attribute reaches the server within the health checker's next round
    try:
        with socket.create_connection(("127.0.0.1", port_of(fixed)), timeout=15) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            started = time.monotonic()
            leftover = sock.recv(1024)  # b"" once the server closes
            waited = time.monotonic() - started
        assert leftover in (b"",) or leftover.startswith(b"HTTP/1.1 408"), leftover
        assert 1.5 < waited < 6, f"closed after {waited:.1f} s"
        assert exchange(port_of(fixed), b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").endswith(b"fixed")
    finally:
        aws("elbv2").modify_load_balancer_attributes(LoadBalancerArn=fixed["LoadBalancerArn"],
                                                     Attributes=[{"Key": "idle_timeout.timeout_seconds", "Value": "60"}])


def test_a_burst_of_50_connections_is_served_without_syn_retries(fixed):
    port = port_of(fixed)
    latencies: list[float] = []
    failures: list[str] = []
    barrier = threading.Barrier(50)

    def one() -> None:
        barrier.wait()
        started = time.perf_counter()
        try:
            answer = exchange(port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", timeout=10)
        except OSError as exc:
            failures.append(str(exc))
            return
        if statuses(answer) != [200]:
            failures.append(repr(answer[:100]))
        latencies.append(time.perf_counter() - started)

    threads = [threading.Thread(target=one) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures[:3]
    p95 = statistics.quantiles(latencies, n=20)[18]
    assert p95 < 0.9, f"p95 {p95:.2f} s: connections waited for SYN retries"


@pytest.mark.parametrize("headers, allowed", [
    ({"Host": "rebind.evil.example:{port}"}, False),
    ({"Host": "127.0.0.1:{port}", "Origin": "http://evil.example"}, False),
    ({"Host": "127.0.0.1:{port}", "Origin": "null"}, False),
    ({"Host": "localhost:{port}"}, True),
    ({"Host": "[::1]:{port}"}, True),
    ({"Host": "127.0.0.1:{port}", "Origin": "http://127.0.0.1:{port}"}, True),  # same origin
    ({"Host": "127.0.0.1:{port}", "Origin": "http://127.0.0.1:{emulator}"}, True),  # the S3 website endpoint
    ({"Host": "127.0.0.1:{port}", "Origin": "http://localhost:{emulator}"}, True),
], ids=["rebinding", "foreign-origin", "null-origin", "localhost", "ipv6-loopback", "same-origin", "s3-website",
        "s3-website-localhost"])
def test_only_loopback_names_and_the_kits_origins_get_through(fixed, settings, headers, allowed):
    port = port_of(fixed)
    head = "".join(f"{name}: {value.format(port=port, emulator=settings.emulator_port)}\r\n" for name, value in headers.items())
    answer = exchange(port, f"POST / HTTP/1.1\r\n{head}Content-Length: 2\r\nConnection: close\r\n\r\n{{}}".encode())
    assert statuses(answer) == ([200] if allowed else [403]), answer[:300]
    assert b"Access-Control-Allow-Origin" not in answer or allowed
