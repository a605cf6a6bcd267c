"""The SecureCart app against real PostgreSQL (a primary and a streaming replica), over real HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from emulator_fixture import client, running_emulator
from werkzeug.serving import make_server

from securecart_lab import config as kit
from securecart_lab.app import AppConfig, create_app
from securecart_lab.app.config import READER_PARAMETER
from securecart_lab.config import Settings
from securecart_lab.ports import free_port
from securecart_lab.postgres import ensure_primary, seed
from securecart_lab.postgres.testing import temp_dir
from securecart_lab.postgres.testing import remove_home

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def databases():
    """(primary, replica): a seeded SecureCart primary and a real streaming standby of it."""
    home = temp_dir()
    settings = Settings(home=home / "home", workspace=home / "ws", pg_port=free_port(), emulator_port=free_port())
    primary = ensure_primary(settings)
    replica = primary.create_replica(settings.pg_dir / "replica1", free_port(), settings.logs_dir / "replica1.log")
    try:
        yield primary, replica
    finally:
        replica.stop(mode="immediate")
        primary.stop(mode="immediate")
        remove_home(home)


@pytest.fixture(scope="module")
def primary(databases):
    return databases[0]


@pytest.fixture(scope="module")
def replica(databases):
    return databases[1]


@pytest.fixture(scope="module")
def rows():
    return seed.seed_rows()


def app_config(primary, **overrides) -> AppConfig:
    base = AppConfig(instance_id="i-0test", db_host=primary.host, db_port=primary.port, port=0)
    return replace(base, **overrides)


@contextmanager
def running(config: AppConfig):
    """The app served by werkzeug's threaded server on a free port, in this process; yields its base URL."""
    app = create_app(config)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        server.server_close()
        app.extensions["securecart_db"].close()


def call(url: str, method: str = "GET", body=None, raw: bytes | None = None, headers: dict | None = None):
    """(status, headers, parsed JSON body) of one real HTTP request."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.loads(error.read())


@pytest.fixture(scope="module")
def base(primary):
    with running(app_config(primary)) as url:
        yield url


def writer_conn(primary) -> psycopg.Connection:
    return primary.connect(kit.DB_NAME, kit.DB_USER, kit.DB_PASSWORD)


def order_count(primary, email: str) -> int:
    with writer_conn(primary) as conn:
        return conn.execute("select count(*) from orders where customer_email = %s", (email,)).fetchone()[0]


# ---- health -----------------------------------------------------------------------------------------------


def test_health_ok_with_instance_and_db_headers(base):
    status, headers, body = call(f"{base}/health")
    assert (status, body) == (200, {"status": "ok", "instance": "i-0test", "db": "ok"})
    assert headers["X-SecureCart-Instance"] == "i-0test"
    assert headers["X-SecureCart-DB"] == "writer"


def test_health_503_when_database_is_down(primary):
    with running(app_config(primary, db_port=free_port())) as url:
        started = time.monotonic()
        status, headers, body = call(f"{url}/health")
        elapsed = time.monotonic() - started
        assert status == 503
        assert body["db"] == "unreachable" and body["instance"] == "i-0test"
        assert headers["X-SecureCart-Instance"] == "i-0test"
        assert elapsed < 1.5
        status, _, body = call(f"{url}/api/products")
        assert status == 503 and body["error"] == "database_unavailable"


# ---- catalog ----------------------------------------------------------------------------------------------


def test_search_is_case_insensitive_over_name_and_description(base, rows):
    word = rows["products"][0]["name"].split()[0]
    expected = {
        p["sku"] for p in rows["products"] if word.lower() in p["name"].lower() or word.lower() in p["description"].lower()
    }
    status, headers, body = call(f"{base}/api/products?q={word.upper()}&limit=200")
    assert status == 200 and headers["X-SecureCart-DB"] == "writer"
    assert {p["sku"] for p in body["products"]} == expected
    assert body["count"] == len(expected) > 0


def test_search_by_category_and_limit(base, rows):
    category = rows["products"][0]["category"]
    in_category = sorted(p["name"] for p in rows["products"] if p["category"] == category)
    _, _, body = call(f"{base}/api/products?category={category}&limit=200")
    assert [p["name"] for p in body["products"]] == in_category
    _, _, body = call(f"{base}/api/products?category={category}&limit=2")
    assert [p["name"] for p in body["products"]] == in_category[:2]
    _, _, body = call(f"{base}/api/products?q=no-such-product-anywhere")
    assert body == {"products": [], "count": 0}


def test_search_rejects_a_bad_limit(base):
    status, _, body = call(f"{base}/api/products?limit=0")
    assert status == 400 and body["error"] == "invalid_limit" and body["message"]


def test_product_detail_has_stock_from_inventory(base, rows):
    product = rows["products"][3]
    stock = next(i for i in rows["inventory"] if i["sku"] == product["sku"])
    status, _, body = call(f"{base}/api/products/{product['sku']}")
    assert status == 200
    assert (body["sku"], body["name"], body["priceCents"], body["stock"]) == (
        product["sku"],
        product["name"],
        product["price_cents"],
        stock["stock"],
    )
    status, _, body = call(f"{base}/api/products/SC-NOPE-0000")
    assert status == 404 and body["error"] == "product_not_found"


def test_categories_count_products(base, rows):
    _, _, body = call(f"{base}/api/categories")
    counts = {}
    for p in rows["products"]:
        counts[p["category"]] = counts.get(p["category"], 0) + 1
    assert {c["name"]: c["productCount"] for c in body["categories"]} == counts


def test_unknown_route_is_a_json_404(base):
    status, _, body = call(f"{base}/api/nothing-here")
    assert status == 404 and set(body) == {"error", "message"}


def test_cors_lets_a_storefront_on_another_origin_call_the_api(base, rows, monkeypatch):
    monkeypatch.setenv("SECURECART_ALLOWED_ORIGINS", "http://storefront.example:8000")
    origin = {"Origin": "http://storefront.example:8000"}
    with urllib.request.urlopen(urllib.request.Request(f"{base}/api/products?limit=1", headers=origin), timeout=10) as response:
        assert response.headers["Access-Control-Allow-Origin"] == origin["Origin"]
        assert "X-SecureCart-Instance" in response.headers["Access-Control-Expose-Headers"]
    preflight = urllib.request.Request(f"{base}/api/orders", method="OPTIONS", headers={
        **origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"})
    with urllib.request.urlopen(preflight, timeout=10) as response:
        assert response.status == 200 and response.headers["Access-Control-Allow-Origin"] == origin["Origin"]
        assert "POST" in response.headers["Access-Control-Allow-Methods"]
        assert "content-type" in response.headers["Access-Control-Allow-Headers"].lower()
    status, headers, body = call(f"{base}/api/orders", "POST", {"customerEmail": "cors@example.com", "items": [
        {"sku": _in_stock(rows, 1)[0]["sku"], "quantity": 1}], "cardToken": "tok_visa_ok"}, headers=origin)
    assert status == 201 and headers["Access-Control-Allow-Origin"] == origin["Origin"], body


def test_cors_allows_the_s3_website_endpoint_and_refuses_other_pages(primary, rows):
    with running(app_config(primary, aws_endpoint_url="http://127.0.0.1:45999")) as url:
        for allowed in ("http://127.0.0.1:45999", "http://localhost:45999", url):
            status, headers, _ = call(f"{url}/api/categories", headers={"Origin": allowed})
            assert status == 200 and headers["Access-Control-Allow-Origin"] == allowed
        status, headers, body = call(f"{url}/api/categories", headers={"Origin": "http://evil.example"})
        assert status == 403 and body["error"] == "forbidden" and "Access-Control-Allow-Origin" not in headers
        order = {"customerEmail": "evil@example.com", "items": [{"sku": _in_stock(rows, 1)[0]["sku"], "quantity": 1}],
                 "cardToken": "tok_visa_ok"}
        for headers in ({"Origin": "http://evil.example"}, {"Host": "rebind.evil.example"}):
            status, response_headers, _ = call(f"{url}/api/orders", "POST", order, headers=headers)
            assert status == 403 and "Access-Control-Allow-Origin" not in response_headers
        assert order_count(primary, "evil@example.com") == 0


def test_the_storefront_reads_its_api_origin_from_config_js(base):
    with urllib.request.urlopen(f"{base}/", timeout=10) as response:
        page = response.read().decode()
    assert page.index('<script src="config.js">') < page.index('<script src="app.js">')
    with urllib.request.urlopen(f"{base}/config.js", timeout=10) as response:
        assert 'window.SECURECART_API = "";' in response.read().decode()


# ---- orders -----------------------------------------------------------------------------------------------


def _in_stock(rows, n: int) -> list[dict]:
    stocked = {i["sku"] for i in rows["inventory"] if i["stock"] >= 10}
    return [p for p in rows["products"] if p["sku"] in stocked][:n]


def test_order_writes_order_and_lines(base, primary, rows):
    first, second = _in_stock(rows, 2)
    email = f"buyer-{uuid.uuid4().hex[:8]}@example.com"
    order = {
        "customerEmail": email,
        "items": [{"sku": first["sku"], "quantity": 2}, {"sku": second["sku"], "quantity": 1}],
        "cardToken": "tok_visa_ok",
    }
    status, headers, body = call(f"{base}/api/orders", "POST", order)
    total = 2 * first["price_cents"] + second["price_cents"]
    assert status == 201, body
    assert body["status"] == "PLACED" and body["totalCents"] == total and body["eventPublished"] is False
    assert body["orderId"].startswith("ord-") and len(body["orderId"]) == 16
    assert headers["X-SecureCart-DB"] == "writer"
    with writer_conn(primary) as conn:
        assert conn.execute("select customer_email, status, total_cents from orders where id = %s", (body["orderId"],)).fetchone() == (
            email,
            "PLACED",
            total,
        )
        lines = conn.execute(
            "select line_no, sku, quantity, unit_price_cents from order_lines where order_id = %s order by line_no",
            (body["orderId"],),
        ).fetchall()
    assert lines == [(1, first["sku"], 2, first["price_cents"]), (2, second["sku"], 1, second["price_cents"])]

    status, _, fetched = call(f"{base}/api/orders/{body['orderId']}")
    assert status == 200
    assert fetched["customerEmail"] == email and fetched["totalCents"] == total
    assert [(line["sku"], line["quantity"]) for line in fetched["lines"]] == [(first["sku"], 2), (second["sku"], 1)]
    status, _, missing = call(f"{base}/api/orders/ord-000000000000")
    assert status == 404 and missing["error"] == "order_not_found"


def test_a_failing_line_writes_nothing(base, primary, rows):
    first, second = _in_stock(rows, 2)
    email = f"atomic-{uuid.uuid4().hex[:8]}@example.com"
    # The database, not the app, refuses the second line: the order row written before it must roll back.
    with writer_conn(primary) as conn:
        conn.execute("alter table order_lines add constraint test_no_seven check (quantity <> 7) not valid")
        conn.commit()
    try:
        order = {
            "customerEmail": email,
            "items": [{"sku": first["sku"], "quantity": 1}, {"sku": second["sku"], "quantity": 7}],
            "cardToken": "tok_visa_ok",
        }
        status, _, body = call(f"{base}/api/orders", "POST", order)
    finally:
        with writer_conn(primary) as conn:
            conn.execute("alter table order_lines drop constraint test_no_seven")
            conn.commit()
    assert status == 409 and body["error"] == "conflict"
    assert order_count(primary, email) == 0


@pytest.mark.parametrize(
    ("order", "error"),
    [
        ({"customerEmail": "x@example.com", "items": [], "cardToken": "tok_visa_ok"}, "empty_order"),
        ({"customerEmail": "x@example.com", "items": [{"sku": "SKU", "quantity": 0}], "cardToken": "tok_visa_ok"}, "invalid_quantity"),
        ({"customerEmail": "x@example.com", "items": [{"sku": "SKU", "quantity": "2"}], "cardToken": "tok_visa_ok"}, "invalid_quantity"),
        ({"customerEmail": "x@example.com", "items": [{"sku": "SC-NOPE-0000", "quantity": 1}], "cardToken": "tok_visa_ok"}, "unknown_sku"),
        ({"customerEmail": "not-an-email", "items": [{"sku": "SKU", "quantity": 1}], "cardToken": "tok_visa_ok"}, "invalid_email"),
        ({"customerEmail": "x@example.com", "items": [{"sku": "SKU", "quantity": 1}]}, "invalid_card_token"),
        ([1, 2], "invalid_body"),
    ],
)
def test_invalid_orders_are_400_and_write_nothing(base, primary, rows, order, error):
    sku = rows["products"][0]["sku"]
    text = json.dumps(order).replace('"SKU"', json.dumps(sku))
    status, _, body = call(f"{base}/api/orders", "POST", raw=text.encode())
    assert (status, body["error"]) == (400, error)
    assert order_count(primary, "x@example.com") == 0


def test_malformed_json_is_400(base):
    status, _, body = call(f"{base}/api/orders", "POST", raw=b"{not json")
    assert (status, body["error"]) == (400, "invalid_body")


def test_more_than_in_stock_is_409(base, primary, rows):
    item = min(rows["inventory"], key=lambda i: i["stock"])
    email = f"greedy-{uuid.uuid4().hex[:8]}@example.com"
    order = {"customerEmail": email, "items": [{"sku": item["sku"], "quantity": item["stock"] + 1}], "cardToken": "tok_visa_ok"}
    status, _, body = call(f"{base}/api/orders", "POST", order)
    assert (status, body["error"]) == (409, "insufficient_stock")
    assert order_count(primary, email) == 0


# ---- reader routing ---------------------------------------------------------------------------------------


def _reader_sessions(replica, instance_id: str) -> int:
    with replica.connect() as conn:
        return conn.execute(
            "select count(*) from pg_stat_activity where application_name = %s", (f"securecart-app {instance_id}",)
        ).fetchone()[0]


def test_reads_go_to_the_reader_and_orders_to_the_writer(primary, replica, rows):
    config = app_config(primary, instance_id="i-0reader", db_reader_host=replica.host, db_reader_port=replica.port)
    with running(config) as url:
        status, headers, _ = call(f"{url}/api/products?q=a")
        assert status == 200 and headers["X-SecureCart-DB"] == "reader"
        _, headers, _ = call(f"{url}/api/products/{rows['products'][0]['sku']}")
        assert headers["X-SecureCart-DB"] == "reader"
        _, headers, _ = call(f"{url}/api/categories")
        assert headers["X-SecureCart-DB"] == "reader"
        assert _reader_sessions(replica, "i-0reader") >= 1
        sku = _in_stock(rows, 1)[0]["sku"]
        order = {"customerEmail": "reader@example.com", "items": [{"sku": sku, "quantity": 1}], "cardToken": "tok_visa_ok"}
        status, headers, _ = call(f"{url}/api/orders", "POST", order)
        assert status == 201 and headers["X-SecureCart-DB"] == "writer"


def test_reader_unreachable_falls_back_to_writer(primary):
    config = app_config(primary, db_reader_host="127.0.0.1", db_reader_port=free_port())
    with running(config) as url:
        started = time.monotonic()
        status, headers, body = call(f"{url}/api/products?limit=3")
        assert status == 200 and headers["X-SecureCart-DB"] == "writer-fallback" and body["count"] == 3
        assert time.monotonic() - started < 1.5
        # Marked down: the next reads do not wait for the dead reader again.
        started = time.monotonic()
        _, headers, _ = call(f"{url}/api/categories")
        assert headers["X-SecureCart-DB"] == "writer-fallback"
        assert time.monotonic() - started < 0.5


def test_reader_stopped_then_restarted(primary, replica):
    config = app_config(primary, db_reader_host=replica.host, db_reader_port=replica.port)
    with running(config) as url:
        assert call(f"{url}/api/categories")[1]["X-SecureCart-DB"] == "reader"
        replica.stop(mode="immediate")
        try:
            status, headers, _ = call(f"{url}/api/categories")
            assert status == 200 and headers["X-SecureCart-DB"] == "writer-fallback"
        finally:
            replica.start()
        deadline = time.monotonic() + 10
        route = None
        while time.monotonic() < deadline and route != "reader":
            time.sleep(0.2)
            route = call(f"{url}/api/categories")[1]["X-SecureCart-DB"]
        assert route == "reader"


# ---- AWS: the reader endpoint from SSM, OrderPlaced to EventBridge ----------------------------------------


@pytest.fixture(scope="module")
def emulator():
    with running_emulator(time_scale=0.01) as handle:
        client(handle, "events").create_event_bus(Name="securecart")
        yield handle


def test_reader_endpoint_from_ssm(primary, replica, emulator):
    ssm = client(emulator, "ssm")
    config = app_config(primary, aws_endpoint_url=emulator.endpoint_url, reader_cache_seconds=0.2)
    with running(config) as url:
        assert call(f"{url}/api/categories")[1]["X-SecureCart-DB"] == "writer"
        ssm.put_parameter(Name=READER_PARAMETER, Value=f"{replica.host}:{replica.port}", Type="String", Overwrite=True)
        try:
            time.sleep(0.3)
            assert call(f"{url}/api/categories")[1]["X-SecureCart-DB"] == "reader"
            ssm.put_parameter(Name=READER_PARAMETER, Value=f"127.0.0.1:{free_port()}", Type="String", Overwrite=True)
            time.sleep(0.3)
            assert call(f"{url}/api/categories")[1]["X-SecureCart-DB"] == "writer-fallback"
            # A learner's near miss: the host without :port. The app must not call the writer's port "reader".
            ssm.put_parameter(Name=READER_PARAMETER, Value=replica.host, Type="String", Overwrite=True)
            time.sleep(0.3)
            assert call(f"{url}/api/categories")[1]["X-SecureCart-DB"] == "writer"
            # Nor the writer's own endpoint.
            ssm.put_parameter(Name=READER_PARAMETER, Value=f"{primary.host}:{primary.port}", Type="String", Overwrite=True)
            time.sleep(0.3)
            assert call(f"{url}/api/categories")[1]["X-SecureCart-DB"] == "writer"
        finally:
            ssm.delete_parameter(Name=READER_PARAMETER)
        time.sleep(0.3)
        assert call(f"{url}/api/categories")[1]["X-SecureCart-DB"] == "writer"


def test_order_placed_reaches_a_queue_through_a_rule(primary, emulator, rows):
    sqs, events = client(emulator, "sqs"), client(emulator, "events")
    queue_url = sqs.create_queue(QueueName="app-orders")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = {"source": ["securecart.orders"], "detail-type": ["OrderPlaced"]}
    events.put_rule(Name="app-orders", EventBusName="securecart", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="app-orders", EventBusName="securecart", Targets=[{"Id": "q", "Arn": queue_arn}])
    item = _in_stock(rows, 1)[0]
    order = {"customerEmail": "events@example.com", "items": [{"sku": item["sku"], "quantity": 3}], "cardToken": "tok_visa_ok"}
    with running(app_config(primary, aws_endpoint_url=emulator.endpoint_url)) as url:
        status, _, placed = call(f"{url}/api/orders", "POST", order)
    assert status == 201 and placed["eventPublished"] is True
    messages = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=5).get("Messages", [])
    assert len(messages) == 1
    event = json.loads(messages[0]["Body"])
    assert (event["source"], event["detail-type"]) == ("securecart.orders", "OrderPlaced")
    detail = event["detail"]
    assert detail["orderId"] == placed["orderId"] and detail["totalCents"] == 3 * item["price_cents"]
    assert detail["items"] == [{"sku": item["sku"], "quantity": 3, "unitPriceCents": item["price_cents"]}]
    assert (detail["customerEmail"], detail["cardToken"]) == ("events@example.com", "tok_visa_ok")
    assert detail["placedAt"].endswith("Z")


def test_failed_publish_keeps_the_order(primary, rows):
    item = _in_stock(rows, 1)[0]
    email = f"offline-{uuid.uuid4().hex[:8]}@example.com"
    order = {"customerEmail": email, "items": [{"sku": item["sku"], "quantity": 1}], "cardToken": "tok_visa_ok"}
    with running(app_config(primary, aws_endpoint_url=f"http://127.0.0.1:{free_port()}")) as url:
        status, _, placed = call(f"{url}/api/orders", "POST", order)
    assert status == 201 and placed["eventPublished"] is False
    assert order_count(primary, email) == 1


# ---- the real process -------------------------------------------------------------------------------------


def _start_process(env: dict[str, str]) -> subprocess.Popen:
    repo = str(Path(__file__).resolve().parents[2])
    return subprocess.Popen(
        [sys.executable, "-m", "securecart_lab.app"],
        env={**os.environ, "PYTHONPATH": repo, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_app_process_serves_the_storefront_and_stops_on_sigterm(primary):
    port = free_port()
    env = {"PORT": str(port), "INSTANCE_ID": "i-0process", "DB_HOST": primary.host, "DB_PORT": str(primary.port)}
    proc = _start_process(env)
    try:
        assert proc.stdout.readline().strip() == f"SecureCart app i-0process listening on http://127.0.0.1:{port}"
        status, headers, body = call(f"http://127.0.0.1:{port}/health")
        assert (status, body["instance"], headers["X-SecureCart-Instance"]) == (200, "i-0process", "i-0process")
        for path, marker in (("/", b'id="place-order"'), ("/static/app.js", b"api/orders"), ("/style.css", b".product-card")):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
                assert response.status == 200 and marker in response.read()
                assert response.headers["X-SecureCart-Instance"] == "i-0process"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
        assert "stopped" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_app_process_reports_a_busy_port_and_bad_settings():
    port = free_port()
    with running(AppConfig(instance_id="i-0busy", db_port=free_port())) as url:
        busy = url.rsplit(":", 1)[1]
        proc = _start_process({"PORT": busy})
        _, err = proc.communicate(timeout=10)
        assert proc.returncode == 2 and f"Cannot listen on 127.0.0.1:{busy}" in err and "Traceback" not in err
    proc = _start_process({"PORT": str(port), "HOST": "0.0.0.0"})
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 2 and "HOST must be a loopback address" in err


# ---- idempotency (issue 8, item 19) -------------------------------------------------------------------------


def call_with_key(url: str, body, key: str):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "Idempotency-Key": key})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.loads(error.read())


def test_two_posts_with_one_idempotency_key_place_one_order(base, primary, rows):
    item = _in_stock(rows, 1)[0]
    email = f"retry-{uuid.uuid4().hex[:8]}@example.com"
    order = {"customerEmail": email, "items": [{"sku": item["sku"], "quantity": 2}], "cardToken": "tok_visa_ok"}
    key = str(uuid.uuid4())
    first = call_with_key(f"{base}/api/orders", order, key)
    again = call_with_key(f"{base}/api/orders", order, key)
    assert first[0] == again[0] == 201, (first[2], again[2])
    assert again[2]["orderId"] == first[2]["orderId"] and again[2]["totalCents"] == first[2]["totalCents"] == 2 * item["price_cents"]
    assert again[2]["status"] == "PLACED" and again[1]["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first[1]
    assert again[1]["Location"] == first[1]["Location"]
    assert order_count(primary, email) == 1
    with writer_conn(primary) as conn:
        assert conn.execute("select count(*) from order_lines where order_id = %s", (first[2]["orderId"],)).fetchone()[0] == 1
    # The key as a body field works the same; another key is another order; no key is always a new order.
    status, _, by_field = call(f"{base}/api/orders", "POST", {**order, "idempotencyKey": key})
    assert status == 201 and by_field["orderId"] == first[2]["orderId"]
    assert call_with_key(f"{base}/api/orders", order, str(uuid.uuid4()))[2]["orderId"] != first[2]["orderId"]
    call(f"{base}/api/orders", "POST", order)
    assert order_count(primary, email) == 3


def test_concurrent_retries_with_one_key_place_one_order(base, primary, rows):
    item = _in_stock(rows, 1)[0]
    email = f"race-{uuid.uuid4().hex[:8]}@example.com"
    order = {"customerEmail": email, "items": [{"sku": item["sku"], "quantity": 1}], "cardToken": "tok_visa_ok"}
    key = str(uuid.uuid4())
    results = []
    threads = [threading.Thread(target=lambda: results.append(call_with_key(f"{base}/api/orders", order, key))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {status for status, _, _ in results} == {201}
    assert len({body["orderId"] for _, _, body in results}) == 1
    assert order_count(primary, email) == 1


def test_one_key_for_a_different_order_is_refused(base, primary, rows):
    item = _in_stock(rows, 1)[0]
    email = f"reuse-{uuid.uuid4().hex[:8]}@example.com"
    order = {"customerEmail": email, "items": [{"sku": item["sku"], "quantity": 1}], "cardToken": "tok_visa_ok"}
    key = str(uuid.uuid4())
    assert call_with_key(f"{base}/api/orders", order, key)[0] == 201
    status, _, body = call_with_key(f"{base}/api/orders", {**order, "items": [{"sku": item["sku"], "quantity": 5}]}, key)
    assert status == 422 and body["error"] == "idempotency_key_reused"
    status, _, body = call_with_key(f"{base}/api/orders", order, "not a key\u00e9")
    assert status == 400 and body["error"] == "invalid_idempotency_key"
    assert order_count(primary, email) == 1
