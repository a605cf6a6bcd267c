"""validate-order: reject orders that cannot be fulfilled before any money moves.

Input: the order (the OrderPlaced event's detail): {"orderId", "customerEmail", "items": [{"sku", "quantity"}], "cardToken"}.
Output: {"valid": true, "itemCount": N} or raises InvalidOrderError, which the state machine can Catch.
"""

import os

import boto3

INVENTORY_TABLE = os.environ.get("INVENTORY_TABLE", "securecart-inventory")

dynamodb = boto3.client("dynamodb")


class InvalidOrderError(Exception):
    """The order is malformed: no items, a quantity under 1, or an unknown SKU. Retrying will not help."""


def handler(event, context):
    order_id = event.get("orderId")
    if not isinstance(order_id, str) or not order_id:
        raise InvalidOrderError("The order has no orderId.")
    items = event.get("items")
    if not isinstance(items, list) or not items:
        raise InvalidOrderError(f"Order {order_id} has no items.")
    for index, item in enumerate(items):
        quantity = item.get("quantity") if isinstance(item, dict) else None
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            raise InvalidOrderError(f"Order {order_id}: items[{index}].quantity must be a whole number of at least 1.")
        if not isinstance(item.get("sku"), str) or not item["sku"]:
            raise InvalidOrderError(f"Order {order_id}: items[{index}] has no sku.")
    unknown = sorted(_unknown_skus({item["sku"] for item in items}))
    if unknown:
        raise InvalidOrderError(f"Order {order_id}: unknown SKU {', '.join(unknown)}.")
    print(f"order {order_id} is valid ({len(items)} lines)")
    return {"valid": True, "itemCount": sum(item["quantity"] for item in items)}


def _unknown_skus(skus):
    """The SKUs that have no row in the inventory table."""
    found = set()
    keys = [{"sku": {"S": sku}} for sku in skus]
    for start in range(0, len(keys), 100):
        request = {INVENTORY_TABLE: {"Keys": keys[start:start + 100], "ProjectionExpression": "sku"}}
        while request:
            response = dynamodb.batch_get_item(RequestItems=request)
            found.update(row["sku"]["S"] for row in response["Responses"].get(INVENTORY_TABLE, []))
            request = response.get("UnprocessedKeys") or None
    return skus - found
