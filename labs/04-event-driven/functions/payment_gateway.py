"""securecart-payment-gateway: SecureCart's card processor, as a function. Like real processors (Stripe, Adyen),
it charges the card every time it is called, unless the request carries an idempotency key it has seen before:
then it answers with the earlier charge and charges nothing.

Request:  {"orderId": "ord-123", "amountCents": 2500, "cardToken": "tok_visa_ok", "idempotencyKey": "ord-123"}
Answer:   {"chargeId": "ch-...", "orderId": "ord-123", "amountCents": 2500, "replayed": false}
Card tokens: tok_visa_ok and most others are charged; tok_corrupt is a request the processor can never accept
(it raises InvalidPaymentRequest every time: a poison message); tok_slow_<seconds> takes that long to answer.
Every charge is one item of the securecart-charges table (chargeId, orderId, amountCents, chargedAt in epoch ms,
calls = how many requests this charge answered).
"""

import os
import re
import time
import uuid

import boto3

CHARGES_TABLE = os.environ.get("CHARGES_TABLE", "securecart-charges")
SLOW = re.compile(r"^tok_slow_(\d+(?:\.\d+)?)$")

dynamodb = boto3.client("dynamodb")


class InvalidPaymentRequest(Exception):
    """The processor can never accept this request: retrying it changes nothing."""


def handler(event, context):
    order_id, amount, token = event.get("orderId"), event.get("amountCents"), str(event.get("cardToken", ""))
    if not isinstance(order_id, str) or not order_id:
        raise InvalidPaymentRequest("orderId is missing")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
        raise InvalidPaymentRequest(f"amountCents must be a whole number of cents, found {amount!r}")
    if token == "tok_corrupt":
        raise InvalidPaymentRequest(f"card token of order {order_id} is corrupt")
    slow = SLOW.match(token)
    if slow:
        time.sleep(float(slow.group(1)))
    key = event.get("idempotencyKey")
    charge_id = f"ch-{key}" if key else f"ch-{uuid.uuid4().hex[:16]}"
    item = {"chargeId": {"S": charge_id}, "orderId": {"S": order_id}, "amountCents": {"N": str(amount)},
            "chargedAt": {"N": str(int(time.time() * 1000))}, "calls": {"N": "1"}}
    try:
        dynamodb.put_item(TableName=CHARGES_TABLE, Item=item, ConditionExpression="attribute_not_exists(chargeId)")
    except dynamodb.exceptions.ConditionalCheckFailedException:
        dynamodb.update_item(TableName=CHARGES_TABLE, Key={"chargeId": {"S": charge_id}},
                             UpdateExpression="ADD calls :one", ExpressionAttributeValues={":one": {"N": "1"}})
        print(f"order {order_id}: idempotency key {key} seen before, answered with charge {charge_id}")
        return {"chargeId": charge_id, "orderId": order_id, "amountCents": amount, "replayed": True}
    print(f"order {order_id}: charged {amount} cents as {charge_id}")
    return {"chargeId": charge_id, "orderId": order_id, "amountCents": amount, "replayed": False}
