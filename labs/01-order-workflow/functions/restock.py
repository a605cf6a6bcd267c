"""restock: record a restock request when an InventoryLow event arrives (an EventBridge rule invokes it).

Input: the EventBridge event, {"detail-type": "InventoryLow", "detail": {"sku", "stock", "threshold", ...}}.
The request lands in the restock-requests table, keyed by SKU and event id, so a redelivered event is recorded once.
"""

import json
import os
from datetime import datetime, timezone

import boto3

RESTOCK_TABLE = os.environ.get("RESTOCK_TABLE", "securecart-restock-requests")

dynamodb = boto3.client("dynamodb")


def handler(event, context):
    detail = event.get("detail") or {}
    sku = detail["sku"]
    threshold = int(detail.get("threshold", 0))
    quantity = max(threshold * 4 - int(detail.get("stock", 0)), threshold, 1)
    request_id = event.get("id") or context.aws_request_id
    try:
        dynamodb.put_item(
            TableName=RESTOCK_TABLE,
            Item={
                "sku": {"S": sku},
                "requestId": {"S": request_id},
                "quantity": {"N": str(quantity)},
                "status": {"S": "REQUESTED"},
                "requestedAt": {"S": datetime.now(timezone.utc).isoformat(timespec="seconds")},
                "event": {"S": json.dumps(event)},
            },
            ConditionExpression="attribute_not_exists(requestId)",
        )
    except dynamodb.exceptions.ConditionalCheckFailedException:
        print(f"restock request {request_id} for {sku} was already recorded")
        return {"recorded": False, "requestId": request_id}
    print(f"restock requested: {quantity} x {sku}")
    return {"recorded": True, "requestId": request_id, "quantity": quantity}
