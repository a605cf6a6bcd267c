"""reserve-inventory: take the ordered quantities out of stock, all or nothing, exactly once per order.

One DynamoDB transaction decrements every SKU on condition that enough stock is left, and marks the order as
reserved on condition that it was not reserved before, so a retried invocation never takes stock twice.
When a SKU falls below its low_stock_threshold, an InventoryLow event goes to the securecart bus.
"""

import json
import os
from collections import Counter
from datetime import datetime, timezone

import boto3

INVENTORY_TABLE = os.environ.get("INVENTORY_TABLE", "securecart-inventory")
ORDERS_TABLE = os.environ.get("ORDERS_TABLE", "securecart-orders")
EVENT_BUS = os.environ.get("EVENT_BUS", "securecart")

dynamodb = boto3.client("dynamodb")
events = boto3.client("events")


class OutOfStockError(Exception):
    """Not enough stock for at least one line of the order."""


def handler(event, context):
    order_id = event["orderId"]
    wanted = Counter()
    for item in event["items"]:
        wanted[item["sku"]] += int(item["quantity"])
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    actions = [{
        "Update": {
            "TableName": ORDERS_TABLE,
            "Key": {"orderId": {"S": order_id}},
            "UpdateExpression": "SET reservedAt = :now",
            "ConditionExpression": "attribute_not_exists(reservedAt)",
            "ExpressionAttributeValues": {":now": {"S": now}},
        }
    }]
    for sku, quantity in sorted(wanted.items()):
        actions.append({
            "Update": {
                "TableName": INVENTORY_TABLE,
                "Key": {"sku": {"S": sku}},
                "UpdateExpression": "SET stock = stock - :q",
                "ConditionExpression": "attribute_exists(sku) AND stock >= :q",
                "ExpressionAttributeValues": {":q": {"N": str(quantity)}},
            }
        })
    try:
        dynamodb.transact_write_items(TransactItems=actions)
    except dynamodb.exceptions.TransactionCanceledException as exc:
        reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
        if reasons and reasons[0] == "ConditionalCheckFailed":
            print(f"order {order_id}: stock was already reserved")
            return {"reserved": True, "alreadyReserved": True}
        short = [sku for sku, code in zip(sorted(wanted), reasons[1:]) if code == "ConditionalCheckFailed"]
        raise OutOfStockError(f"Order {order_id}: not enough stock for {', '.join(short) or 'some items'}.")

    for sku in sorted(wanted):
        row = dynamodb.get_item(TableName=INVENTORY_TABLE, Key={"sku": {"S": sku}}, ConsistentRead=True)["Item"]
        stock, threshold = int(row["stock"]["N"]), int(row.get("low_stock_threshold", {"N": "0"})["N"])
        print(f"order {order_id}: reserved {wanted[sku]} x {sku}, {stock} left")
        if stock < threshold:
            _inventory_low(sku, stock, threshold, order_id, now)
    return {"reserved": True, "alreadyReserved": False}


def _inventory_low(sku, stock, threshold, order_id, now):
    detail = {"sku": sku, "stock": stock, "threshold": threshold, "orderId": order_id, "detectedAt": now}
    response = events.put_events(Entries=[{
        "Source": "securecart.inventory",
        "DetailType": "InventoryLow",
        "Detail": json.dumps(detail),
        "EventBusName": EVENT_BUS,
    }])
    print(f"InventoryLow for {sku} ({stock} < {threshold}): {response.get('FailedEntryCount', 0)} failed")
