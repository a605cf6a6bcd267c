"""notify-customer: queue a confirmation message for the customer.

The message goes to an SQS queue rather than straight to an email service: if the mailer is slow or down,
orders still complete and the messages wait in the queue (with a dead-letter queue for poison messages).
"""

import json
import os

import boto3

QUEUE_NAME = os.environ.get("NOTIFICATIONS_QUEUE", "securecart-notifications")

sqs = boto3.client("sqs")


def handler(event, context):
    order_id = event["orderId"]
    queue_url = sqs.get_queue_url(QueueName=QUEUE_NAME)["QueueUrl"]
    message = {
        "type": "OrderConfirmation",
        "orderId": order_id,
        "customerEmail": event.get("customerEmail"),
        "items": event.get("items", []),
        "totalCents": event.get("totalCents"),
    }
    response = sqs.send_message(
        QueueUrl=queue_url,
        MessageBody=json.dumps(message),
        MessageAttributes={"orderId": {"DataType": "String", "StringValue": order_id}},
    )
    print(f"order {order_id}: confirmation queued as message {response['MessageId']}")
    return {"queued": True, "messageId": response["MessageId"]}
