"""The policy evaluator the emulator enforces: AWS's logic, statement by statement (no emulator needed)."""

from securecart_lab.emulator.iam import ALLOW, EXPLICIT_DENY, IMPLICIT_DENY, denial_message, evaluate, Decision

QUEUE = "arn:aws:sqs:us-east-1:123456789012:securecart-support"
TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/securecart-orders"


def decide(statements, action, resource, context=None, caller=None) -> str:
    return evaluate([({"Version": "2012-10-17", "Statement": statements}, None)], action, resource, context or {},
                    caller).result


def test_allow_then_implicit_deny():
    allow = [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": QUEUE}]
    assert decide(allow, "sqs:SendMessage", QUEUE) == ALLOW
    assert decide(allow, "sqs:DeleteMessage", QUEUE) == IMPLICIT_DENY
    assert decide(allow, "sqs:SendMessage", QUEUE + "-dlq") == IMPLICIT_DENY
    assert decide([], "sqs:SendMessage", QUEUE) == IMPLICIT_DENY


def test_explicit_deny_wins_over_any_allow():
    statements = [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"},
                  {"Effect": "Deny", "Action": "sqs:SendMessage", "Resource": QUEUE}]
    assert decide(statements, "sqs:SendMessage", QUEUE) == EXPLICIT_DENY
    assert decide(statements, "sqs:ReceiveMessage", QUEUE) == ALLOW
    # in another policy too
    documents = [({"Statement": statements[:1]}, None), ({"Statement": statements[1:]}, "arn:aws:iam::aws:policy/X")]
    assert evaluate(documents, "sqs:SendMessage", QUEUE, {}) == Decision(EXPLICIT_DENY, "arn:aws:iam::aws:policy/X")


def test_actions_are_case_insensitive_with_star_and_question_mark():
    statements = [{"Effect": "Allow", "Action": ["DynamoDB:Get*", "dynamodb:?pdateItem"], "Resource": TABLE}]
    assert decide(statements, "dynamodb:GetItem", TABLE) == ALLOW
    assert decide(statements, "dynamodb:getitem", TABLE) == ALLOW
    assert decide(statements, "dynamodb:UpdateItem", TABLE) == ALLOW
    assert decide(statements, "dynamodb:PutItem", TABLE) == IMPLICIT_DENY


def test_resources_match_wildcards_case_sensitively():
    statements = [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "arn:aws:sqs:*:123456789012:securecart-*"}]
    assert decide(statements, "sqs:SendMessage", QUEUE) == ALLOW
    assert decide(statements, "sqs:SendMessage", QUEUE.replace("securecart", "SecureCart")) == IMPLICIT_DENY
    assert decide(statements, "sqs:SendMessage", "arn:aws:sqs:us-east-1:999999999999:securecart-support") == IMPLICIT_DENY
    # a dot in a pattern is a dot, not "any character"
    dotted = [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::a.b/*"}]
    assert decide(dotted, "s3:GetObject", "arn:aws:s3:::a.b/key") == ALLOW
    assert decide(dotted, "s3:GetObject", "arn:aws:s3:::axb/key") == IMPLICIT_DENY


def test_not_action_and_not_resource():
    not_action = [{"Effect": "Allow", "NotAction": "sqs:*", "Resource": "*"}]
    assert decide(not_action, "dynamodb:UpdateItem", TABLE) == ALLOW
    assert decide(not_action, "sqs:SendMessage", QUEUE) == IMPLICIT_DENY
    not_resource = [{"Effect": "Allow", "Action": "sqs:SendMessage", "NotResource": QUEUE}]
    assert decide(not_resource, "sqs:SendMessage", QUEUE) == IMPLICIT_DENY
    assert decide(not_resource, "sqs:SendMessage", QUEUE + "-dlq") == ALLOW
    deny_all_but = [{"Effect": "Allow", "Action": "*", "Resource": "*"},
                    {"Effect": "Deny", "NotAction": ["sqs:SendMessage"], "Resource": "*"}]
    assert decide(deny_all_but, "sqs:SendMessage", QUEUE) == ALLOW
    assert decide(deny_all_but, "sqs:DeleteQueue", QUEUE) == EXPLICIT_DENY


def test_conditions():
    ctx = {"aws:RequestedRegion": "us-east-1", "aws:SourceIp": "127.0.0.1", "aws:EpochTime": "1700000000",
           "aws:PrincipalArn": "arn:aws:iam::123456789012:role/securecart-order-processing-role"}

    def allow_if(condition):
        return decide([{"Effect": "Allow", "Action": "sqs:*", "Resource": "*", "Condition": condition}],
                      "sqs:SendMessage", QUEUE, ctx)

    assert allow_if({"StringEquals": {"aws:RequestedRegion": ["eu-west-1", "us-east-1"]}}) == ALLOW
    assert allow_if({"StringEquals": {"aws:RequestedRegion": "eu-west-1"}}) == IMPLICIT_DENY  # an unmet Allow: no deny
    assert allow_if({"StringNotEquals": {"aws:RequestedRegion": "eu-west-1"}}) == ALLOW
    assert allow_if({"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/securecart-*"}}) == ALLOW
    assert allow_if({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/other"}}) == IMPLICIT_DENY
    assert allow_if({"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}) == ALLOW
    assert allow_if({"NotIpAddress": {"aws:SourceIp": "127.0.0.0/8"}}) == IMPLICIT_DENY
    assert allow_if({"NumericLessThan": {"aws:EpochTime": "1800000000"}}) == ALLOW
    assert allow_if({"DateGreaterThan": {"aws:EpochTime": "2030-01-01T00:00:00Z"}}) == IMPLICIT_DENY
    assert allow_if({"Bool": {"aws:MultiFactorAuthPresent": "true"}}) == IMPLICIT_DENY  # missing key
    assert allow_if({"BoolIfExists": {"aws:MultiFactorAuthPresent": "true"}}) == ALLOW
    assert allow_if({"Null": {"aws:MultiFactorAuthPresent": "true"}}) == ALLOW
    assert allow_if({"StringEquals": {"aws:RequestedRegion": "us-east-1"},
                     "IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}) == IMPLICIT_DENY  # every operator must hold


def test_resource_policy_principal_and_source_arn():
    rule = "arn:aws:events:us-east-1:123456789012:rule/securecart/securecart-inventory-low"
    statement = {"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "lambda:InvokeFunction",
                 "Resource": "arn:aws:lambda:us-east-1:123456789012:function:restock",
                 "Condition": {"ArnLike": {"AWS:SourceArn": rule}}}
    fn = "arn:aws:lambda:us-east-1:123456789012:function:restock"
    events = {"Service": "events.amazonaws.com"}
    assert decide([statement], "lambda:InvokeFunction", fn, {"aws:SourceArn": rule}, events) == ALLOW
    assert decide([statement], "lambda:InvokeFunction", fn, {"aws:SourceArn": rule + "-2"}, events) == IMPLICIT_DENY
    assert decide([statement], "lambda:InvokeFunction", fn, {"aws:SourceArn": rule}, {"Service": "sns.amazonaws.com"}) \
        == IMPLICIT_DENY


def test_denial_messages_are_aws_words():
    caller = "arn:aws:sts::123456789012:assumed-role/r/s"
    assert denial_message(caller, "sqs:SendMessage", QUEUE, Decision(IMPLICIT_DENY)) == (
        f"User: {caller} is not authorized to perform: sqs:sendmessage on resource: {QUEUE} "
        "because no identity-based policy allows the sqs:sendmessage action")
    assert denial_message(caller, "dynamodb:UpdateItem", TABLE, Decision(EXPLICIT_DENY)) == (
        f"User: {caller} is not authorized to perform: dynamodb:UpdateItem on resource: {TABLE} "
        "with an explicit deny in an identity-based policy")
