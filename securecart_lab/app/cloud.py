"""The app's AWS calls: the reader endpoint in SSM Parameter Store, and OrderPlaced events to EventBridge."""

from __future__ import annotations

import json
import logging
import os
import threading
import time

from securecart_lab.app.config import READER_PARAMETER, WRITER_PARAMETER, AppConfig, AppConfigError, Endpoint
from securecart_lab.config import ACCESS_KEY, REGION, SECRET_KEY

log = logging.getLogger("securecart.app.cloud")

ORDER_SOURCE = "securecart.orders"
ORDER_PLACED = "OrderPlaced"


def _client(service: str, endpoint_url: str):
    # Imported here: boto3 takes a third of a second to import and most requests never need it.
    import boto3
    from botocore.config import Config

    env = os.environ
    return boto3.session.Session().client(
        service,
        endpoint_url=endpoint_url,
        region_name=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or REGION,
        aws_access_key_id=env.get("AWS_ACCESS_KEY_ID") or ACCESS_KEY,
        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") or SECRET_KEY,
        config=Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=3),
    )


class Clients:
    """boto3 clients for the configured endpoint, built on first use and shared by request threads."""

    def __init__(self, endpoint_url: str):
        self._endpoint_url = endpoint_url
        self._lock = threading.Lock()
        self._clients: dict[str, object] = {}

    def get(self, service: str):
        with self._lock:
            if service not in self._clients:
                self._clients[service] = _client(service, self._endpoint_url)
            return self._clients[service]


class ReaderLookup:
    """Which reader to use: DB_READER_HOST if set, else the SSM parameter (cached briefly), else none."""

    def __init__(self, config: AppConfig, clients: Clients | None):
        self._config = config
        self._clients = clients
        self._lock = threading.Lock()
        self._cached: tuple[float, Endpoint | None] | None = None

    parameter = READER_PARAMETER

    def __call__(self) -> Endpoint | None:
        if self._config.static_reader or self._clients is None:
            return self._config.static_reader
        return self._cached_parameter()

    def _cached_parameter(self) -> Endpoint | None:
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now >= self._cached[0]:
                self._cached = (now + self._config.reader_cache_seconds, self._fetch())
            return self._cached[1]

    def _fetch(self) -> Endpoint | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            value = self._clients.get("ssm").get_parameter(Name=self.parameter)["Parameter"]["Value"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ParameterNotFound":
                log.warning("reading %s failed: %s", self.parameter, error)
            return None
        except BotoCoreError as error:
            log.warning("reading %s failed: %s", self.parameter, error)
            return None
        try:
            # host:port, both: a bare host would silently take the writer's port, i.e. read from the writer.
            if ":" not in value:
                raise AppConfigError(f"Expected a database endpoint as host:port, found {value!r}: the value lacks :port.")
            return Endpoint.parse(value, self._config.db_port)
        except AppConfigError as error:
            log.warning("%s: %s", self.parameter, error)
            return None


class WriterLookup(ReaderLookup):
    """Which writer to use: the SSM parameter /securecart/db/writer-endpoint when it is set (cached briefly; a
    failover moves the writer there without redeploying instances), else DB_HOST/DB_PORT."""

    parameter = WRITER_PARAMETER

    def __call__(self) -> Endpoint:
        if self._clients is None:
            return self._config.writer
        return self._cached_parameter() or self._config.writer


def publish_order_placed(clients: Clients | None, bus_name: str, detail: dict) -> bool:
    """Put one OrderPlaced event on the bus. False (and a log line) when there is no endpoint or the put failed."""
    if clients is None:
        return False
    from botocore.exceptions import BotoCoreError, ClientError

    entry = {
        "Source": ORDER_SOURCE,
        "DetailType": ORDER_PLACED,
        "Detail": json.dumps(detail),
        "EventBusName": bus_name,
    }
    try:
        response = clients.get("events").put_events(Entries=[entry])
    except (BotoCoreError, ClientError) as error:
        log.error("OrderPlaced for %s not published: %s", detail.get("orderId"), error)
        return False
    if response.get("FailedEntryCount"):
        failure = response["Entries"][0]
        log.error(
            "OrderPlaced for %s not published: %s %s",
            detail.get("orderId"),
            failure.get("ErrorCode"),
            failure.get("ErrorMessage"),
        )
        return False
    return True
