"""The emulator's HTTP server stops at once on SIGTERM: `down` does not wait for cheroot's connection loop to look
up from its wait for connections (half a second by default)."""

from __future__ import annotations

import http.client
import threading
import time

from securecart_lab.emulator import server as emulator_server
from securecart_lab.ports import free_port


def _app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


def test_the_server_stops_without_waiting_for_its_connection_loop():
    port = free_port()
    server = emulator_server.make_server("127.0.0.1", port, _app)
    server.expiration_interval = 30  # the loop's wait: stopping must not depend on it
    serving = threading.Thread(target=server.serve, daemon=True)
    serving.start()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/")
    assert conn.getresponse().read() == b"ok"  # a keep-alive connection stays open while it stops
    time.sleep(0.1)  # the loop is back in its wait
    started = time.monotonic()
    emulator_server._stop(server, "127.0.0.1", port)
    took = time.monotonic() - started
    serving.join(10)
    conn.close()
    assert not serving.is_alive()
    assert took < 10, f"stop took {took:.1f} s: it waited for the connection loop's 30 s wait"
