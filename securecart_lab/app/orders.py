"""Orders: validating a request, writing it with its lines in one transaction, reading it back (writer only)."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone

import psycopg
from psycopg.rows import dict_row

from securecart_lab.app.errors import ApiError, bad_request

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_QUANTITY = 100
MAX_LINES = 50
# An Idempotency-Key (header, or the body's idempotencyKey): visible ASCII, as the IETF draft and Stripe allow.
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


@dataclass(frozen=True)
class OrderRequest:
    customer_email: str
    items: tuple[tuple[str, int], ...]
    card_token: str


def parse_order(body: object) -> OrderRequest:
    """Validate a POST /api/orders body; ApiError(400) names the first problem."""
    if not isinstance(body, dict):
        raise bad_request("invalid_body", "Send a JSON object with customerEmail, items and cardToken.")
    email = body.get("customerEmail")
    if not isinstance(email, str) or not _EMAIL.match(email.strip()):
        raise bad_request("invalid_email", "customerEmail must be an email address.")
    items = body.get("items")
    if not isinstance(items, list) or not items:
        raise bad_request("empty_order", "items must list at least one {sku, quantity}.")
    if len(items) > MAX_LINES:
        raise bad_request("too_many_items", f"An order holds at most {MAX_LINES} lines.")
    parsed = []
    for index, item in enumerate(items):
        sku = item.get("sku") if isinstance(item, dict) else None
        quantity = item.get("quantity") if isinstance(item, dict) else None
        if not isinstance(sku, str) or not sku.strip():
            raise bad_request("invalid_item", f"items[{index}].sku must be a product SKU.")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= MAX_QUANTITY:
            raise bad_request("invalid_quantity", f"items[{index}].quantity must be a whole number from 1 to {MAX_QUANTITY}.")
        parsed.append((sku.strip(), quantity))
    token = body.get("cardToken")
    if not isinstance(token, str) or not token.strip():
        raise bad_request("invalid_card_token", "cardToken must be a payment token such as tok_visa_ok.")
    return OrderRequest(email.strip(), tuple(parsed), token.strip())


def idempotency_key(header: str | None, body: object) -> str | None:
    """The request's idempotency key: the Idempotency-Key header, else the body's idempotencyKey; None without one."""
    key = header if header is not None else (body.get("idempotencyKey") if isinstance(body, dict) else None)
    if key is None:
        return None
    if not isinstance(key, str) or not _IDEMPOTENCY_KEY.match(key):
        raise bad_request("invalid_idempotency_key", "Idempotency-Key must be 1 to 255 visible ASCII characters, e.g. a UUID.")
    return key


def new_order_id(idempotency_key: str | None = None) -> str:
    """A random order id; with an idempotency key, the one id that key always names (so a retry finds its order)."""
    if idempotency_key is None:
        return f"ord-{secrets.token_hex(6)}"
    return f"ord-{hashlib.sha256(idempotency_key.encode()).hexdigest()[:12]}"


class _AlreadyPlaced(Exception):
    pass


def place_order(conn: psycopg.Connection, request: OrderRequest, idempotency_key: str | None = None) -> dict:
    """Price the items, then insert the order and all its lines in one transaction. Returns the OrderPlaced detail.

    With an idempotency key, a retry of a request that was committed (even if its response never arrived) returns
    that order with `replayed` true instead of placing a second one; the same key for a different order is a 422."""
    if idempotency_key is None:
        return _insert(conn, request, new_order_id())
    order_id = new_order_id(idempotency_key)
    existing = get_order(conn, order_id)
    if existing is None:
        try:
            return _insert(conn, request, order_id)
        except _AlreadyPlaced:  # a concurrent request with the same key committed first
            existing = get_order(conn, order_id)
    return _replay(existing, request)


def _replay(existing: dict, request: OrderRequest) -> dict:
    placed = [(line["sku"], line["quantity"]) for line in existing["lines"]]
    if existing["customerEmail"] != request.customer_email or placed != list(request.items):
        raise ApiError(422, "idempotency_key_reused",
                       f"This Idempotency-Key was already used for another order ({existing['orderId']}); "
                       "send a new key for a new order.")
    return {
        "orderId": existing["orderId"],
        "customerEmail": existing["customerEmail"],
        "items": [{"sku": line["sku"], "quantity": line["quantity"], "unitPriceCents": line["unitPriceCents"]}
                  for line in existing["lines"]],
        "totalCents": existing["totalCents"],
        "cardToken": request.card_token,
        "placedAt": existing["createdAt"],
        "status": existing["status"],
        "replayed": True,
    }


def _insert(conn: psycopg.Connection, request: OrderRequest, order_id: str) -> dict:
    skus = sorted({sku for sku, _ in request.items})
    with conn.transaction():
        rows = conn.execute(
            "select p.sku, p.price_cents, i.stock from products p left join inventory i on i.sku = p.sku"
            " where p.sku = any(%s)",
            (skus,),
        ).fetchall()
        prices = {sku: price for sku, price, _ in rows}
        stock = {sku: level for sku, _, level in rows}
        unknown = [sku for sku in skus if sku not in prices]
        if unknown:
            raise bad_request("unknown_sku", f"No product with SKU {', '.join(unknown)}.")
        wanted = Counter()
        for sku, quantity in request.items:
            wanted[sku] += quantity
        for sku, quantity in wanted.items():
            if stock[sku] is not None and quantity > stock[sku]:
                raise ApiError(409, "insufficient_stock", f"Only {stock[sku]} of {sku} in stock, {quantity} ordered.")
        lines = [{"sku": sku, "quantity": quantity, "unitPriceCents": prices[sku]} for sku, quantity in request.items]
        total = sum(line["quantity"] * line["unitPriceCents"] for line in lines)
        inserted = conn.execute(
            "insert into orders (id, customer_email, status, total_cents) values (%s, %s, 'PLACED', %s)"
            " on conflict (id) do nothing returning created_at",
            (order_id, request.customer_email, total),
        ).fetchone()
        if inserted is None:
            raise _AlreadyPlaced(order_id)
        (created_at,) = inserted
        with conn.cursor() as cur:
            cur.executemany(
                "insert into order_lines (order_id, line_no, sku, quantity, unit_price_cents) values (%s, %s, %s, %s, %s)",
                [(order_id, n, line["sku"], line["quantity"], line["unitPriceCents"]) for n, line in enumerate(lines, 1)],
            )
    return {
        "orderId": order_id,
        "customerEmail": request.customer_email,
        "items": lines,
        "totalCents": total,
        "cardToken": request.card_token,
        "placedAt": _iso(created_at),
    }


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def get_order(conn: psycopg.Connection, order_id: str) -> dict | None:
    """The order with its lines (and each line's product name), or None."""
    with conn.cursor(row_factory=dict_row) as cur:
        order = cur.execute(
            "select id, customer_email, status, total_cents, created_at from orders where id = %s", (order_id,)
        ).fetchone()
        if order is None:
            return None
        lines = cur.execute(
            "select l.line_no, l.sku, p.name, l.quantity, l.unit_price_cents"
            " from order_lines l left join products p on p.sku = l.sku where l.order_id = %s order by l.line_no",
            (order_id,),
        ).fetchall()
    return {
        "orderId": order["id"],
        "customerEmail": order["customer_email"],
        "status": order["status"],
        "totalCents": order["total_cents"],
        "createdAt": _iso(order["created_at"]),
        "lines": [
            {
                "lineNo": line["line_no"],
                "sku": line["sku"],
                "name": line["name"],
                "quantity": line["quantity"],
                "unitPriceCents": line["unit_price_cents"],
                "lineTotalCents": line["quantity"] * line["unit_price_cents"],
            }
            for line in lines
        ],
    }
