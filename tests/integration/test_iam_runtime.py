"""IAM at run time, through boto3 and the AWS CLI: the roles services act as are evaluated with AWS's logic, and a
denied call fails as it does on AWS (the Task's integration error, AccessDenied in the service's shape)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from emulator_fixture import wait_for, zip_bytes

from securecart_lab.postgres.testing import remove_home

pytestmark = pytest.mark.integration

ACCOUNT = "123456789012"
POLICY = "run-time"


@pytest.fixture(scope="module")
def names():
    suffix = uuid.uuid4().hex[:8]
    return lambda base: f"iam-{base}-{suffix}"


def _role(aws, name: str, *statements) -> str:
    iam = aws("iam")
    try:
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        arn = iam.get_role(RoleName=name)["Role"]["Arn"]
    _policy(aws, name, *statements)
    return arn


def _policy(aws, role: str, *statements) -> None:
    aws("iam").put_role_policy(RoleName=role, PolicyName=POLICY, PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": list(statements)}))


def _allow(action, resource="*", **extra):
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def _queue(aws, name: str) -> tuple[str, str]:
    url = aws("sqs").create_queue(QueueName=name)["QueueUrl"]
    return url, f"arn:aws:sqs:us-east-1:{ACCOUNT}:{name}"


def _machine(aws, name: str, role_arn: str, states: dict, start: str) -> str:
    definition = {"StartAt": start, "States": states}
    return aws("stepfunctions").create_state_machine(name=name, definition=json.dumps(definition),
                                                     roleArn=role_arn)["stateMachineArn"]


def _run(aws, machine_arn: str, payload: dict | None = None) -> dict:
    sfn = aws("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=machine_arn, input=json.dumps(payload or {}))["executionArn"]
    return wait_for(lambda: (lambda d: d if d["status"] != "RUNNING" else None)(sfn.describe_execution(executionArn=arn)),
                    timeout=30, what="the execution to stop")


def _task_failure(aws, described: dict) -> dict:
    history = aws("stepfunctions").get_execution_history(executionArn=described["executionArn"])["events"]
    return next(e["taskFailedEventDetails"] for e in history if e["type"] == "TaskFailed")


def _send(queue_url: str) -> dict:
    return {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage",
            "Parameters": {"QueueUrl": queue_url, "MessageBody": {"orderId": "ord-1"}}, "End": True}


def test_send_to_support_without_sqs_send_message_fails_with_aws_error(aws, names):
    url, queue_arn = _queue(aws, names("support"))
    role_name = names("machine-role")
    role_arn = _role(aws, role_name, _allow("sqs:SendMessage", queue_arn), _allow("dynamodb:UpdateItem"))
    machine = _machine(aws, names("support-flow"), role_arn, {"SendToSupport": _send(url)}, "SendToSupport")
    assert _run(aws, machine)["status"] == "SUCCEEDED"

    _policy(aws, role_name, _allow("dynamodb:UpdateItem"))  # sqs:SendMessage removed
    described = _run(aws, machine)
    assert described["status"] == "FAILED"
    assert described["error"] == "SQS.AmazonSQSException"
    failure = _task_failure(aws, described)
    assert failure["error"] == "SQS.AmazonSQSException"
    assert failure["cause"].startswith(
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/")
    assert (f" is not authorized to perform: sqs:sendmessage on resource: {queue_arn} because no identity-based "
            "policy allows the sqs:sendmessage action (Service: AmazonSQS; Status Code: 403; Error Code: AccessDenied; "
            "Request ID: ") in failure["cause"]
    assert failure["cause"].endswith("; Proxy: null)")
    assert failure["resourceType"] == "sqs" and failure["resource"] == "sendMessage"


def test_a_catch_on_the_integration_error_name_catches_the_denial(aws, names):
    url, _ = _queue(aws, names("caught"))
    role_arn = _role(aws, names("caught-role"), _allow("dynamodb:GetItem"))
    send = {key: value for key, value in _send(url).items() if key != "End"}
    states = {"Send": {**send, "Next": "Done", "Catch": [{"ErrorEquals": ["SQS.AmazonSQSException"], "Next": "Denied"}]},
              "Done": {"Type": "Succeed"}, "Denied": {"Type": "Fail", "Error": "Denied"}}
    described = _run(aws, _machine(aws, names("caught-flow"), role_arn, states, "Send"))
    assert (described["status"], described["error"]) == ("FAILED", "Denied")


def test_explicit_deny_wins_over_a_wildcard_allow(aws, names):
    url, queue_arn = _queue(aws, names("denied"))
    role_arn = _role(aws, names("deny-role"), _allow("sqs:*"),
                     {"Effect": "Deny", "Action": "sqs:SendMessage", "Resource": queue_arn})
    described = _run(aws, _machine(aws, names("deny-flow"), role_arn, {"Send": _send(url)}, "Send"))
    cause = _task_failure(aws, described)["cause"]
    assert f"sqs:sendmessage on resource: {queue_arn} with an explicit deny in an identity-based policy" in cause


def test_not_action_allows_everything_but_the_named_actions(aws, names):
    url, _ = _queue(aws, names("notaction"))
    table = names("orders")
    aws("dynamodb").create_table(TableName=table, AttributeDefinitions=[{"AttributeName": "orderId", "AttributeType": "S"}],
                                 KeySchema=[{"AttributeName": "orderId", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST")
    role_arn = _role(aws, names("notaction-role"), {"Effect": "Allow", "NotAction": "sqs:*", "Resource": "*"})
    put = {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:putItem",
           "Parameters": {"TableName": table, "Item": {"orderId": {"S": "ord-1"}}}, "Next": "Send"}
    described = _run(aws, _machine(aws, names("notaction-flow"), role_arn, {"Put": put, "Send": _send(url)}, "Put"))
    assert described["error"] == "SQS.AmazonSQSException"  # the put went through, the send did not
    assert aws("dynamodb").get_item(TableName=table, Key={"orderId": {"S": "ord-1"}}).get("Item")


def test_wildcard_resource_matches_only_what_it_names(aws, names):
    prefix = names("wild")
    url_in, _ = _queue(aws, f"{prefix}-in")
    url_out, out_arn = _queue(aws, f"other-{prefix}")
    role_arn = _role(aws, names("wild-role"), _allow("sqs:SendMessage", f"arn:aws:sqs:us-east-1:{ACCOUNT}:{prefix}-*"))
    assert _run(aws, _machine(aws, names("wild-in"), role_arn, {"Send": _send(url_in)}, "Send"))["status"] == "SUCCEEDED"
    described = _run(aws, _machine(aws, names("wild-out"), role_arn, {"Send": _send(url_out)}, "Send"))
    assert f"on resource: {out_arn} because" in _task_failure(aws, described)["cause"]


def test_lambda_and_dynamodb_tasks_fail_with_their_integration_errors(aws, names):
    fn_role = _role(aws, names("fn-role"), _allow("logs:*"))
    fn = aws("lambda").create_function(FunctionName=names("echo"), Runtime="python3.12", Role=fn_role,
                                       Handler="app.handler", Code={"ZipFile": zip_bytes({"app.py": "def handler(e, c):\n    return e\n"})})
    role_arn = _role(aws, names("parent-role"), _allow("sqs:*"))
    cases = {
        "Lambda.AWSLambdaException": ({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                                       "Parameters": {"FunctionName": fn["FunctionName"], "Payload": {}}, "End": True},
                                      f"lambda:InvokeFunction on resource: {fn['FunctionArn']}"),
        "DynamoDB.AmazonDynamoDBException": ({"Type": "Task", "Resource": "arn:aws:states:::dynamodb:getItem",
                                              "Parameters": {"TableName": "nope", "Key": {"k": {"S": "v"}}}, "End": True},
                                             f"dynamodb:GetItem on resource: arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/nope"),
    }
    for error, (state, words) in cases.items():
        described = _run(aws, _machine(aws, names(error.split(".")[0].lower()), role_arn, {"T": state}, "T"))
        failure = _task_failure(aws, described)
        assert failure["error"] == error, failure
        assert words in failure["cause"] and "because no identity-based policy allows" in failure["cause"], failure["cause"]
    # direct function ARN as the Resource
    described = _run(aws, _machine(aws, names("direct"), role_arn,
                                   {"T": {"Type": "Task", "Resource": fn["FunctionArn"], "End": True}}, "T"))
    assert described["error"] == "Lambda.AWSLambdaException"


def _start_child(machine_arn: str, suffix: str = "") -> dict:
    return {"T": {"Type": "Task", "Resource": f"arn:aws:states:::states:startExecution{suffix}", "End": True,
                  "Parameters": {"StateMachineArn": machine_arn, "Input": {
                      "orderId": "ord-1", "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$": "$$.Execution.Id"}}}}


def test_nested_executions_need_start_execution_on_the_child_and_describe_execution_for_sync(aws, names):
    child = _machine(aws, names("child"), _role(aws, names("child-role"), _allow("logs:*")),
                     {"P": {"Type": "Pass", "End": True}}, "P")
    child_executions = child.replace(":stateMachine:", ":execution:") + ":*"
    role_name = names("nested-role")
    role_arn = _role(aws, role_name, _allow("states:StartExecution", child),
                     _allow(["states:DescribeExecution", "states:StopExecution"], child_executions))
    plain = _machine(aws, names("nested-plain"), role_arn, _start_child(child), "T")
    wait = _machine(aws, names("nested-sync"), role_arn, _start_child(child, ".sync"), "T")
    assert _run(aws, plain)["status"] == "SUCCEEDED"
    described = _run(aws, wait)
    assert described["status"] == "SUCCEEDED", described
    assert json.loads(json.loads(described["output"])["Output"])["orderId"] == "ord-1"

    _policy(aws, role_name, _allow("states:StartExecution", child))  # no DescribeExecution: .sync cannot wait
    assert _run(aws, plain)["status"] == "SUCCEEDED"
    described = _run(aws, wait)
    failure = _task_failure(aws, described)
    assert (described["error"], failure["error"]) == ("StepFunctions.AWSStepFunctionsException",) * 2, failure
    assert f"assumed-role/{role_name}/" in failure["cause"]
    assert f"is not authorized to perform: states:DescribeExecution on resource: {child_executions[:-1]}" in failure[
        "cause"], failure["cause"]
    assert (failure["resource"], failure["resourceType"]) == ("startExecution.sync", "states")

    other = child.rsplit(":", 1)[0] + ":some-other-machine"
    _policy(aws, role_name, _allow("states:StartExecution", other))  # not this child
    started_before = len(aws("stepfunctions").list_executions(stateMachineArn=child)["executions"])
    described = _run(aws, plain)
    failure = _task_failure(aws, described)
    assert failure["error"] == "StepFunctions.AWSStepFunctionsException", failure
    assert (f"is not authorized to perform: states:StartExecution on resource: {child} because no identity-based "
            "policy allows the states:StartExecution action (Service: AWSStepFunctions; Status Code: ") in failure[
        "cause"], failure["cause"]
    assert len(aws("stepfunctions").list_executions(stateMachineArn=child)["executions"]) == started_before


def test_handler_code_acts_as_its_execution_role(aws, names):
    queue = names("notes")
    url, queue_arn = _queue(aws, queue)
    role_name = names("handler-role")
    role_arn = _role(aws, role_name, _allow("sqs:GetQueueUrl"))
    machine = f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:{names('anything')}"
    source = (
        "import boto3, botocore\n"
        "def handler(event, context):\n"
        "    out = {'caller': boto3.client('sts').get_caller_identity()['Arn']}\n"
        "    sqs = boto3.client('sqs')\n"
        f"    url = sqs.get_queue_url(QueueName='{queue}')['QueueUrl']\n"
        "    try:\n"
        "        sqs.send_message(QueueUrl=url, MessageBody='hello')\n"
        "        out['sent'] = True\n"
        "    except botocore.exceptions.ClientError as exc:\n"
        "        out['error'] = exc.response['Error']\n"
        "    try:\n"
        f"        boto3.client('stepfunctions').start_execution(stateMachineArn='{machine}')\n"
        "    except botocore.exceptions.ClientError as exc:\n"
        "        out['states'] = exc.response['Error']\n"
        "    return out\n")
    name = names("handler")
    lam = aws("lambda")
    lam.create_function(FunctionName=name, Runtime="python3.12", Role=role_arn, Handler="app.handler", Timeout=30,
                        Code={"ZipFile": zip_bytes({"app.py": source})})
    result = json.loads(lam.invoke(FunctionName=name, Payload=b"{}")["Payload"].read())
    assert "caller" in result, result
    assert result["caller"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/{name}"
    assert result["error"]["Code"] == "AccessDenied"
    assert result["error"]["Message"] == (
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/{name} is not authorized to perform: sqs:sendmessage "
        f"on resource: {queue_arn} because no identity-based policy allows the sqs:sendmessage action")
    assert result["states"]["Code"] == "AccessDeniedException"
    assert f"states:StartExecution on resource: {machine} because" in result["states"]["Message"]
    _policy(aws, role_name, _allow("sqs:GetQueueUrl"), _allow("sqs:SendMessage", queue_arn))
    result = json.loads(lam.invoke(FunctionName=name, Payload=b"{}")["Payload"].read())
    assert result.get("sent") is True, result
    # the learner's own calls use the kit's admin keys and are not evaluated
    aws("sqs").send_message(QueueUrl=url, MessageBody="from the learner")


def test_eventbridge_targets_need_their_role_or_the_function_policy(aws, names):
    events, sfn, lam = aws("events"), aws("stepfunctions"), aws("lambda")
    machine_role = _role(aws, names("target-machine-role"), _allow("sqs:*"))
    machine = _machine(aws, names("target-machine"), machine_role, {"P": {"Type": "Pass", "End": True}}, "P")
    events_role_name = names("events-role")
    events_role = _role(aws, events_role_name, _allow("states:StartExecution", machine + "-other"))
    fn_role = _role(aws, names("target-fn-role"), _allow("logs:*"))
    fn = lam.create_function(FunctionName=names("target-fn"), Runtime="python3.12", Role=fn_role, Handler="app.handler",
                             Code={"ZipFile": zip_bytes({"app.py": "def handler(e, c):\n    print('EVENT', e['id'])\n"})})
    source = names("source")
    rule_arn = events.put_rule(Name=names("rule"), EventPattern=json.dumps({"source": [source]}))["RuleArn"]
    events.put_targets(Rule=names("rule"), Targets=[{"Id": "sfn", "Arn": machine, "RoleArn": events_role},
                                                    {"Id": "fn", "Arn": fn["FunctionArn"]}])

    def put() -> str:
        return events.put_events(Entries=[{"Source": source, "DetailType": "T", "Detail": "{}"}])["Entries"][0]["EventId"]

    def invoked(event_id: str) -> bool:
        logs = aws("logs")
        try:
            found = logs.filter_log_events(logGroupName=f"/aws/lambda/{fn['FunctionName']}")["events"]
        except logs.exceptions.ResourceNotFoundException:
            return False
        return any(event_id in e["message"] for e in found)

    denied = put()
    time.sleep(1.0)  # nothing may happen: give a wrong delivery time to show up
    assert sfn.list_executions(stateMachineArn=machine)["executions"] == []
    assert not invoked(denied)

    _policy(aws, events_role_name, _allow("states:StartExecution", machine))
    lam.add_permission(FunctionName=fn["FunctionName"], StatementId="events", Action="lambda:InvokeFunction",
                       Principal="events.amazonaws.com", SourceArn=rule_arn)
    allowed = put()
    wait_for(lambda: sfn.list_executions(stateMachineArn=machine)["executions"], what="the execution")
    wait_for(lambda: invoked(allowed), what="the function's log")
    assert not invoked(denied)


def test_a_role_assumed_with_sts_is_enforced_for_s3_and_other_services(aws, names, engine):
    import boto3

    bucket = names("bucket")
    aws("s3").create_bucket(Bucket=bucket)
    aws("s3").put_object(Bucket=bucket, Key="orders/1.json", Body=b"{}")
    role_arn = _role(aws, names("reader"), _allow("s3:GetObject", f"arn:aws:s3:::{bucket}/orders/*"))
    creds = aws("sts").assume_role(RoleArn=role_arn, RoleSessionName="ada")["Credentials"]

    def as_role(service):
        return boto3.client(service, endpoint_url=engine.endpoint_url, region_name="us-east-1",
                            aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                            aws_session_token=creds["SessionToken"])

    s3 = as_role("s3")
    assert s3.get_object(Bucket=bucket, Key="orders/1.json")["Body"].read() == b"{}"
    with pytest.raises(s3.exceptions.ClientError) as denied:
        s3.put_object(Bucket=bucket, Key="orders/2.json", Body=b"{}")
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert denied.value.response["Error"] == {"Code": "AccessDenied", "Message": (
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/{names('reader')}/ada is not authorized to perform: s3:PutObject "
        f'on resource: "arn:aws:s3:::{bucket}/orders/2.json" because no identity-based policy allows the s3:PutObject '
        "action")}
    sns = as_role("sns")
    with pytest.raises(sns.exceptions.AuthorizationErrorException):
        sns.create_topic(Name=names("topic"))
    dynamodb = as_role("dynamodb")
    with pytest.raises(dynamodb.exceptions.ClientError) as denied:
        dynamodb.list_tables()
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert as_role("sts").get_caller_identity()["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{names('reader')}/ada"


def test_policy_simulator_answers_with_the_enforced_logic(aws, names):
    role_arn = _role(aws, names("sim-role"), _allow("sqs:*"), {"Effect": "Deny", "Action": "sqs:DeleteQueue", "Resource": "*"})
    results = aws("iam").simulate_principal_policy(
        PolicySourceArn=role_arn, ActionNames=["sqs:SendMessage", "sqs:DeleteQueue", "dynamodb:GetItem"],
        ResourceArns=[f"arn:aws:sqs:us-east-1:{ACCOUNT}:q"])["EvaluationResults"]
    assert [(r["EvalActionName"], r["EvalDecision"]) for r in results] == [
        ("sqs:SendMessage", "allowed"), ("sqs:DeleteQueue", "explicitDeny"), ("dynamodb:GetItem", "implicitDeny")]


needs_awscli = pytest.mark.skipif(importlib.util.find_spec("awscli") is None, reason="awscli (the test extra) missing")


@needs_awscli
def test_aws_cli_shows_the_denied_task_and_the_health_says_enforced(aws, names, engine):
    url, _ = _queue(aws, names("cli"))
    role_arn = _role(aws, names("cli-role"), _allow("dynamodb:*"))
    machine = _machine(aws, names("cli-flow"), role_arn, {"Send": _send(url)}, "Send")
    env = {**os.environ, "AWS_ENDPOINT_URL": engine.endpoint_url, "AWS_ACCESS_KEY_ID": "test",
           "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": "/dev/null"}

    def cli(*args: str) -> dict:
        done = subprocess.run([sys.executable, "-m", "awscli", *args, "--endpoint-url", engine.endpoint_url,
                               "--output", "json"], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    arn = cli("stepfunctions", "start-execution", "--state-machine-arn", machine)["executionArn"]
    described = wait_for(lambda: (lambda d: d if d["status"] != "RUNNING" else None)(
        cli("stepfunctions", "describe-execution", "--execution-arn", arn)), what="the execution")
    assert described["error"] == "SQS.AmazonSQSException" and "is not authorized to perform: sqs:sendmessage" in described["cause"]
    assert engine.health()["iam"] == "enforced"


def test_check_reports_say_iam_was_enforced(settings, engine):
    from securecart_lab.labs import service
    from securecart_lab.reporting import IAM_ENFORCED

    assert service.run_info(settings).iam == IAM_ENFORCED


def test_iam_off_lets_every_call_through_and_says_so():
    from emulator_fixture import client, start_emulator

    from securecart_lab.emulator import process
    from securecart_lab.reporting import IAM_OFF, iam_setting

    home = tempfile.mkdtemp(prefix="securecart-iam-off-", dir="/tmp")
    handle = start_emulator(Path(home), extra_env={"SECURECART_IAM": "off"})
    try:
        iam, sqs, sfn = client(handle, "iam"), client(handle, "sqs"), client(handle, "stepfunctions")
        role = iam.create_role(RoleName="nothing", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        url = sqs.create_queue(QueueName="support")["QueueUrl"]
        machine = sfn.create_state_machine(name="off", roleArn=role, definition=json.dumps(
            {"StartAt": "Send", "States": {"Send": _send(url)}}))["stateMachineArn"]
        arn = sfn.start_execution(stateMachineArn=machine)["executionArn"]
        described = wait_for(lambda: (lambda d: d if d["status"] != "RUNNING" else None)(
            sfn.describe_execution(executionArn=arn)), what="the execution")
        assert described["status"] == "SUCCEEDED"
        health = process.health(handle.endpoint_url)
        assert health["iam"] == "off" and iam_setting(health) == IAM_OFF
    finally:
        handle.stop()
        remove_home(Path(home))
