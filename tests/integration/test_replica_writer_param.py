"""The app's writer moves with SSM /securecart/db/writer-endpoint (lab 3's failover), against real servers."""

from __future__ import annotations

import json
import threading
import time
import urllib.request

import pytest
from emulator_fixture import client, start_emulator
from werkzeug.serving import make_server

from securecart_lab import config as kit
from securecart_lab.app import AppConfig, create_app
from securecart_lab.app.config import WRITER_PARAMETER
from securecart_lab.config import Settings
from securecart_lab.ports import free_port
from securecart_lab.postgres import ensure_primary
from securecart_lab.postgres.testing import temp_dir
from securecart_lab.postgres.testing import remove_home

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def servers():
    """(primary, promoted): two writable servers with the same seeded data, as after a failover."""
    home = temp_dir()
    settings = Settings(home=home / "home", workspace=home / "ws", pg_port=free_port(), emulator_port=free_port())
    primary = ensure_primary(settings)
    promoted = primary.create_replica(settings.pg_dir / "promoted", free_port(), settings.logs_dir / "promoted.log")
    promoted.promote()
    emulator = start_emulator(home / "emu", time_scale=0.01)
    try:
        yield primary, promoted, emulator
    finally:
        emulator.stop()
        promoted.stop(mode="immediate")
        primary.stop(mode="immediate")
        remove_home(home)


def place_order(url: str, email: str) -> str:
    body = {"customerEmail": email, "items": [{"sku": "SC-ELEC-0001", "quantity": 1}], "cardToken": "tok_visa_ok"}
    request = urllib.request.Request(f"{url}/api/orders", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201
        return json.loads(response.read())["orderId"]


def stored_on(server, order_id: str) -> bool:
    with server.connect(kit.DB_NAME, kit.DB_USER, kit.DB_PASSWORD) as conn:
        return conn.execute("select 1 from orders where id = %s", (order_id,)).fetchone() is not None


def test_orders_follow_the_writer_parameter(servers):
    primary, promoted, emulator = servers
    ssm = client(emulator, "ssm")
    config = AppConfig(instance_id="i-0writer", db_host=primary.host, db_port=primary.port, port=0,
                       aws_endpoint_url=emulator.endpoint_url, reader_cache_seconds=0.2)
    app = create_app(config)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.port}"
    try:
        first = place_order(url, "before@example.com")
        assert stored_on(primary, first) and not stored_on(promoted, first)

        ssm.put_parameter(Name=WRITER_PARAMETER, Value=f"{promoted.host}:{promoted.port}", Type="String", Overwrite=True)
        time.sleep(0.3)
        moved = place_order(url, "after@example.com")
        assert stored_on(promoted, moved) and not stored_on(primary, moved)

        ssm.delete_parameter(Name=WRITER_PARAMETER)
        time.sleep(0.3)
        back = place_order(url, "back@example.com")
        assert stored_on(primary, back)
    finally:
        server.shutdown()
        server.server_close()
        app.extensions["securecart_db"].close()
