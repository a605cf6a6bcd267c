"""hotpath.py: responses serialised with the remembered field names are byte for byte moto's own; request ids keep
AWS's shape. Each test patches moto in a child process (patching it here would leak into other tests)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SERIALIZE_BOTH_WAYS = r'''
import re
from moto.core import DEFAULT_ACCOUNT_ID as ACCOUNT
from moto.core.serialize import XFormedAttributePicker, get_serializer_class
from moto.core.utils import get_service_model
from moto.rds.models import rds_backends
from moto.sqs.models import sqs_backends

def serialize(service, operation, protocol, result):
    model = get_service_model(service).operation_model(operation)
    serializer = get_serializer_class(service, protocol)(operation_model=model, value_picker=XFormedAttributePicker())
    response = serializer.serialize(result)
    # The one field moto computes from the clock as it serialises.
    response["body"] = re.sub(r"<LatestRestorableTime>[^<]*</LatestRestorableTime>", "", response["body"])
    return response

# Model objects (fields found under aliases: DBInstanceIdentifier -> identifier ...) and plain dicts.
db = rds_backends[ACCOUNT]["us-east-1"].create_db_instance({
    "db_instance_identifier": "db1", "engine": "postgres", "db_instance_class": "db.t3.micro", "allocated_storage": 20,
    "master_username": "admin", "master_user_password": "password123", "tags": [{"Key": "k", "Value": "v"}]})
sqs = sqs_backends[ACCOUNT]["us-east-1"]
queue = sqs.create_queue("q")
sqs.send_message("q", "body", message_attributes={"a": {"DataType": "String", "StringValue": "x"}})
messages = sqs.receive_message("q", 10, 0, 30, message_attribute_names=["All"])
item = {"S": {"S": "s"}, "N": {"N": "1.5"}, "B": {"B": "YmluYXJ5"}, "SS": {"SS": ["a", "b"]}, "NS": {"NS": ["1", "2"]},
        "BS": {"BS": ["YQ=="]}, "M": {"M": {"in": {"L": [{"S": "x"}, {"NULL": True}, {"BOOL": False}]}}},
        "NULL": {"NULL": True}, "BOOL": {"BOOL": True}}
cases = [
    ("rds", "DescribeDBInstances", "query", {"DBInstances": [db]}),
    ("rds", "CreateDBInstance", "query", {"DBInstance": db}),
    ("sqs", "ReceiveMessage", "json", {"Messages": messages}),
    ("sqs", "GetQueueAttributes", "json", {"Attributes": queue.attributes}),
    ("dynamodb", "GetItem", "json", {"Item": item, "ConsumedCapacity": {"TableName": "t", "CapacityUnits": 0.5}}),
    ("dynamodb", "Query", "json", {"Items": [item, item], "Count": 2, "ScannedCount": 2}),
]
before = [serialize(*case) for case in cases]
from securecart_lab.emulator import hotpath
hotpath.install()
for _ in range(2):  # the second pass answers from the remembered names
    for case, old in zip(cases, before):
        new = serialize(*case)
        assert new == old, (case[:2], old, new)
print("identical")
'''


def _run(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_remembered_field_names_serialise_as_moto_does():
    assert "identical" in _run(SERIALIZE_BOTH_WAYS)


def test_request_ids_keep_their_shape_and_differ():
    out = _run(
        "from securecart_lab.emulator import hotpath\n"
        "hotpath.install()\n"
        "from moto.core import responses\n"
        "headers = {}\n"
        "ids = {responses.gen_amzn_requestid_long(headers) for _ in range(100)}\n"
        "assert len(ids) == 100 and headers['x-amzn-requestid'] in ids\n"
        "assert all(len(i) == 52 and i.isalnum() and i.isascii() for i in ids), ids\n"
        "print('ok')\n")
    assert "ok" in out
