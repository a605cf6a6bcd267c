"""securecart-fraud-score: SecureCart's fraud model, as a function the fraud-check workflow calls.

Input: the OrderPlaced detail. Output: {"orderId", "score" (0-100), "reasons": [...]}. The score adds up:
  40  a total of $1,000 or more (totalCents >= 100000)
  40  a card issued in another country than the one the order ships to
  30  a guest checkout (no customerId)
capped at 100. SecureCart holds an order that scores 70 or more. Every order scored is recorded in the
securecart-fraud-reviews table (orderId, score, reasons, scoredAt), which is how you (and the checks) see which
orders the workflow looked at.
"""

import os
import time

import boto3

REVIEWS_TABLE = os.environ.get("REVIEWS_TABLE", "securecart-fraud-reviews")
HIGH_TOTAL_CENTS = 100000

dynamodb = boto3.client("dynamodb")


def handler(event, context):
    order_id = event["orderId"]
    score, reasons = 0, []
    if int(event.get("totalCents", 0)) >= HIGH_TOTAL_CENTS:
        score += 40
        reasons.append("a total of $1,000 or more")
    card, shipping = event.get("cardCountry"), event.get("shippingCountry")
    if card and shipping and card != shipping:
        score += 40
        reasons.append(f"a card issued in {card} for an order shipped to {shipping}")
    if not event.get("customerId"):
        score += 30
        reasons.append("a guest checkout")
    score = min(score, 100)
    dynamodb.update_item(
        TableName=REVIEWS_TABLE,
        Key={"orderId": {"S": order_id}},
        UpdateExpression="SET score = :score, reasons = :reasons, scoredAt = :at ADD reviews :one",
        ExpressionAttributeValues={":score": {"N": str(score)}, ":reasons": {"S": "; ".join(reasons) or "none"},
                                   ":at": {"N": str(int(time.time() * 1000))}, ":one": {"N": "1"}},
    )
    print(f"order {order_id}: score {score} ({'; '.join(reasons) or 'nothing unusual'})")
    return {"orderId": order_id, "score": score, "reasons": reasons}
