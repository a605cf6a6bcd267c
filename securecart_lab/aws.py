"""boto3 clients pointed at the running engine. The only place clients are built.

boto3 loads with the first client (a fifth of a second): commands that build none (up, down, --help) skip it."""

from __future__ import annotations

import functools
import threading

from securecart_lab.config import ACCOUNT_ID, REGION, SECRET_KEY, access_key_for

_session_lock = threading.Lock()


@functools.cache
def _session():
    # One session for every client: its loader reads botocore's endpoint and retry data once, not per client.
    import boto3

    return boto3.session.Session()


@functools.cache
def _config():
    from botocore.config import Config

    # inject_host_prefix: StartSyncExecution and TestState would go to "sync-127.0.0.1".
    return Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=3, read_timeout=60,
                  inject_host_prefix=False)


@functools.lru_cache(maxsize=64)
def client(service: str, endpoint_url: str, account: str = ACCOUNT_ID):
    """A client acting as the admin of `account` (SecureCart's by default; config.ACCOUNTS)."""
    with _session_lock:  # a session is not thread-safe; the clients it makes are
        return _session().client(
            service,
            endpoint_url=endpoint_url,
            region_name=REGION,
            aws_access_key_id=access_key_for(account),
            aws_secret_access_key=SECRET_KEY,
            config=_config(),
        )
