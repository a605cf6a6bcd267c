"""The app's configuration from the environment, and order validation (no servers needed)."""

from __future__ import annotations

import pytest

from securecart_lab.app import AppConfig, Endpoint
from securecart_lab.app.config import AppConfigError
from securecart_lab.app.errors import ApiError
from securecart_lab.app.orders import parse_order


def test_defaults():
    config = AppConfig.from_env({})
    assert (config.host, config.port, config.db_port, config.event_bus_name) == ("127.0.0.1", 8080, 5432, "securecart")
    assert config.static_reader is None and config.aws_endpoint_url is None
    assert config.instance_id  # hostname-pid


def test_everything_from_env():
    config = AppConfig.from_env(
        {
            "PORT": "9001",
            "HOST": "localhost",
            "INSTANCE_ID": "i-0abc",
            "DB_HOST": "127.0.0.2",
            "DB_PORT": "6000",
            "DB_NAME": "shop",
            "DB_USER": "u",
            "DB_PASSWORD": "p",
            "DB_READER_HOST": "127.0.0.3",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:4566",
            "EVENT_BUS_NAME": "orders",
        }
    )
    assert config.port == 9001 and config.instance_id == "i-0abc"
    assert config.writer == Endpoint("127.0.0.2", 6000)
    assert config.static_reader == Endpoint("127.0.0.3", 6000)  # reader port defaults to the writer's
    assert (config.db_name, config.db_user, config.db_password) == ("shop", "u", "p")
    assert (config.aws_endpoint_url, config.event_bus_name) == ("http://127.0.0.1:4566", "orders")


@pytest.mark.parametrize(("env", "message"), [({"PORT": "http"}, "PORT must be"), ({"DB_PORT": "99999"}, "DB_PORT must be"), ({"HOST": "0.0.0.0"}, "loopback")])
def test_bad_settings_are_typed_errors(env, message):
    with pytest.raises(AppConfigError, match=message) as raised:
        AppConfig.from_env(env)
    assert raised.value.hint


def test_endpoint_parse():
    assert Endpoint.parse("db.internal:5433", 5432) == Endpoint("db.internal", 5433)
    assert Endpoint.parse("db.internal", 5432) == Endpoint("db.internal", 5432)
    for bad in ("", ":5432", "host:port", "host:0"):
        with pytest.raises(AppConfigError):
            Endpoint.parse(bad, 5432)


def test_parse_order_keeps_lines_in_order():
    order = parse_order(
        {"customerEmail": " a@b.co ", "items": [{"sku": "B", "quantity": 2}, {"sku": "A", "quantity": 1}], "cardToken": "tok_visa_ok"}
    )
    assert order.customer_email == "a@b.co" and order.items == (("B", 2), ("A", 1)) and order.card_token == "tok_visa_ok"


@pytest.mark.parametrize(
    ("items", "error"),
    [
        (None, "empty_order"),
        ([{"sku": "A", "quantity": True}], "invalid_quantity"),
        ([{"sku": "A", "quantity": 1.5}], "invalid_quantity"),
        ([{"sku": "A", "quantity": 101}], "invalid_quantity"),
        ([{"sku": "", "quantity": 1}], "invalid_item"),
        (["A"], "invalid_item"),
    ],
)
def test_parse_order_rejects(items, error):
    with pytest.raises(ApiError) as raised:
        parse_order({"customerEmail": "a@b.co", "items": items, "cardToken": "tok_visa_ok"})
    assert (raised.value.status, raised.value.error) == (400, error)
