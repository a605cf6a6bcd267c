"""The emulator's HTTP server (cheroot): keep-alive connections, header names moto needs, streamed bodies, requests
that wait on other requests, and a prompt stop."""

from __future__ import annotations

import http.client
import io
import threading
import time

import pytest
from emulator_fixture import client, running_emulator

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def emulator():
    with running_emulator() as handle:
        yield handle


def test_connections_are_kept_alive(emulator):
    connection = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=10)
    for _ in range(3):
        connection.request("GET", "/_localstack/health")
        response = connection.getresponse()
        response.read()
        assert response.status == 200 and response.getheader("Connection") != "close"
    assert connection.sock is not None


def test_s3_metadata_names_keep_their_underscores(emulator):
    s3 = client(emulator, "s3")
    s3.create_bucket(Bucket="metadata")
    s3.put_object(Bucket="metadata", Key="k", Body=b"x", Metadata={"order_id": "1", "customer-id": "2"})
    assert s3.head_object(Bucket="metadata", Key="k")["Metadata"] == {"order_id": "1", "customer-id": "2"}


def test_a_streamed_upload_of_unknown_length_arrives_whole(emulator):
    class Unseekable(io.RawIOBase):
        def __init__(self, data: bytes):
            self.data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:
            chunk = self.data.read(len(buffer))
            buffer[:len(chunk)] = chunk
            return len(chunk)

    s3 = client(emulator, "s3")
    s3.create_bucket(Bucket="streams")
    body = bytes(range(256)) * 4096  # 1 MiB
    s3.upload_fileobj(Unseekable(body), "streams", "big.bin")
    assert s3.get_object(Bucket="streams", Key="big.bin")["Body"].read() == body


def test_requests_waiting_on_others_do_not_exhaust_the_threads(emulator):
    sqs = client(emulator, "sqs")
    url = sqs.create_queue(QueueName="waiters")["QueueUrl"]
    received: list[int] = []

    def wait_for_one() -> None:
        waiting = client(emulator, "sqs")
        received.append(len(waiting.receive_message(QueueUrl=url, WaitTimeSeconds=10).get("Messages", [])))

    waiters = [threading.Thread(target=wait_for_one) for _ in range(48)]  # more than the server's first threads
    for thread in waiters:
        thread.start()
    time.sleep(1)
    for i in range(48):
        sqs.send_message(QueueUrl=url, MessageBody=str(i))
    for thread in waiters:
        thread.join(30)
    assert sum(received) == 48


def test_the_server_stops_promptly_on_sigterm():
    with running_emulator() as handle:
        client(handle, "sqs").list_queues()
        started = time.perf_counter()
        handle.stop()
        elapsed = time.perf_counter() - started
        assert handle.process.returncode == 0 and "stopping" in handle.log()
    assert elapsed < 5
