"""securecart-checkout: lab 4's order path. It records each order in lab 1's orders table (status PLACED) and puts
one OrderPlaced event per order on the securecart bus. It takes no payment: what happens next is up to the rules.

Invoke it with one order, or {"orders": [...]} for several (a burst):
  {"orderId": "ord-123", "customerId": "cus-42", "customerEmail": "ana@example.com",
   "items": [{"sku": "SC-ELEC-0001", "quantity": 1, "unitPriceCents": 2500}],
   "cardToken": "tok_visa_ok", "cardCountry": "US", "shippingCountry": "US"}
totalCents is computed from the items when missing; orderId is generated when missing. A guest checkout has no
customerId. The answer lists the orders placed: {"orders": [{"orderId": ..., "totalCents": ..., "status": "PLACED"}]}.
"""

import json
import os
import time
import uuid
from datetime import datetime, timezone

import boto3

ORDERS_TABLE = os.environ.get("ORDERS_TABLE", "securecart-orders")
EVENT_BUS = os.environ.get("EVENT_BUS", "securecart")
SOURCE = os.environ.get("ORDER_SOURCE", "securecart.checkout")

dynamodb = boto3.client("dynamodb")
events = boto3.client("events")


def handler(event, context):
    orders = event["orders"] if isinstance(event.get("orders"), list) else [event]
    now_ms = int(time.time() * 1000)
    details = [_detail(order, now_ms) for order in orders]
    rows = [{"PutRequest": {"Item": _row(detail, now_ms)}} for detail in details]
    for start in range(0, len(rows), 25):
        request = {ORDERS_TABLE: rows[start:start + 25]}
        while request:
            request = dynamodb.batch_write_item(RequestItems=request).get("UnprocessedItems") or None
    for start in range(0, len(details), 10):
        entries = [{"EventBusName": EVENT_BUS, "Source": SOURCE, "DetailType": "OrderPlaced",
                    "Detail": json.dumps(detail)} for detail in details[start:start + 10]]
        answer = events.put_events(Entries=entries)
        if answer.get("FailedEntryCount"):
            failed = [e for e in answer["Entries"] if e.get("ErrorCode")]
            raise RuntimeError(f"OrderPlaced not published: {failed[0]['ErrorCode']}: {failed[0].get('ErrorMessage')}")
    print(f"placed {len(details)} order(s): {', '.join(d['orderId'] for d in details[:5])}"
          + (" ..." if len(details) > 5 else ""))
    return {"orders": [{"orderId": d["orderId"], "totalCents": d["totalCents"], "status": "PLACED"} for d in details]}


def _detail(order, now_ms):
    items = order.get("items") or [{"sku": "SC-ELEC-0001", "quantity": 1, "unitPriceCents": order.get("totalCents", 0)}]
    total = order.get("totalCents")
    if total is None:
        total = sum(int(i.get("unitPriceCents", 0)) * int(i.get("quantity", 1)) for i in items)
    detail = {
        "orderId": order.get("orderId") or f"ord-{uuid.uuid4().hex[:12]}",
        "customerEmail": order.get("customerEmail", "guest@example.com"),
        "items": items,
        "totalCents": int(total),
        "cardToken": order.get("cardToken", "tok_visa_ok"),
        "cardCountry": order.get("cardCountry", "US"),
        "shippingCountry": order.get("shippingCountry", "US"),
        "placedAt": datetime.fromtimestamp(now_ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds"),
    }
    if order.get("customerId"):
        detail["customerId"] = order["customerId"]
    return detail


def _row(detail, now_ms):
    return {
        "orderId": {"S": detail["orderId"]},
        "status": {"S": "PLACED"},
        "totalCents": {"N": str(detail["totalCents"])},
        "customerEmail": {"S": detail["customerEmail"]},
        "placedAtMs": {"N": str(now_ms)},
        "channel": {"S": "checkout"},
    }
