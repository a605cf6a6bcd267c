"""authorize-payment: a pretend payment gateway that behaves the same way every time, so checks can rely on it.

Card tokens:
  tok_visa_ok    approved.
  tok_flaky_N    the gateway times out (PaymentGatewayTimeout) on the first N attempts for this order, then approves.
  tok_declined   declined (PaymentDeclinedError). Any other token is declined too.

Attempts are counted per order in the payments table. Authorizing is idempotent: once an order is approved,
calling again returns the same authorization instead of charging twice. That is what makes a Retry safe.
"""

import os
import re
import uuid

import boto3

PAYMENTS_TABLE = os.environ.get("PAYMENTS_TABLE", "securecart-payments")
FLAKY = re.compile(r"^tok_flaky_(\d+)$")

dynamodb = boto3.client("dynamodb")


class PaymentGatewayTimeout(Exception):
    """The gateway did not answer in time: transient, worth retrying."""


class PaymentDeclinedError(Exception):
    """The card was declined: permanent, a person has to look at it."""


def handler(event, context):
    order_id = event["orderId"]
    token = event.get("cardToken", "")
    record = dynamodb.update_item(
        TableName=PAYMENTS_TABLE,
        Key={"orderId": {"S": order_id}},
        UpdateExpression="ADD attempts :one SET cardToken = :token",
        ExpressionAttributeValues={":one": {"N": "1"}, ":token": {"S": token}},
        ReturnValues="ALL_NEW",
    )["Attributes"]
    attempt = int(record["attempts"]["N"])
    print(f"order {order_id}: payment attempt {attempt} with {token}")
    if "authorizationId" in record:
        return _approved(order_id, record["authorizationId"]["S"], attempt)

    flaky = FLAKY.match(token)
    if flaky and attempt <= int(flaky.group(1)):
        raise PaymentGatewayTimeout(f"Payment gateway timed out for order {order_id} (attempt {attempt}).")
    if token != "tok_visa_ok" and not flaky:
        raise PaymentDeclinedError(f"Card {token or '(none)'} was declined for order {order_id}.")

    authorization_id = f"auth-{uuid.uuid4().hex[:12]}"
    try:
        dynamodb.update_item(
            TableName=PAYMENTS_TABLE,
            Key={"orderId": {"S": order_id}},
            UpdateExpression="SET authorizationId = :id, amountCents = :amount",
            ConditionExpression="attribute_not_exists(authorizationId)",
            ExpressionAttributeValues={":id": {"S": authorization_id}, ":amount": {"N": str(event.get("totalCents", 0))}},
        )
    except dynamodb.exceptions.ConditionalCheckFailedException:
        # A concurrent attempt approved first: use its authorization.
        current = dynamodb.get_item(TableName=PAYMENTS_TABLE, Key={"orderId": {"S": order_id}}, ConsistentRead=True)
        authorization_id = current["Item"]["authorizationId"]["S"]
    return _approved(order_id, authorization_id, attempt)


def _approved(order_id, authorization_id, attempt):
    print(f"order {order_id}: approved as {authorization_id}")
    return {"approved": True, "authorizationId": authorization_id, "attempts": attempt}
