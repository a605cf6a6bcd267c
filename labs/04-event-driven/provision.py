"""Lab 4's baseline (the kit's checkout, fraud model and payment gateway functions, the tables they write) and the
deploy of the learner's template.

Lab 4 builds on lab 1 (lab.toml `requires`): its `securecart` bus and `securecart-orders` table. The learner's
`template.yaml` is deployed as stack `securecart-lab04` through a change set (securecart_lab/labs/stacks.py):
what AWS updates in place is updated in place, a failure rolls back to what ran before. The template has four
sections, one per step, marked `# --- 1. Schemas`, `# --- 2. Fraud detection`, `# --- 3. Compliance forwarding`,
`# --- 4. Payment queue`.

The kit's functions (labs/04-event-driven/functions/) are not the learner's to write; they are what the learner's
resources call and what the checks observe:
  securecart-checkout         the order path: orders table (PLACED) + one OrderPlaced event per order on the bus
  securecart-fraud-score      the fraud model: a score per order, recorded in securecart-fraud-reviews
  securecart-payment-gateway  the card processor: one item per charge in securecart-charges, idempotency keys
"""

from __future__ import annotations

import json
from pathlib import Path

from botocore.exceptions import ClientError

from securecart_lab.labs import functions, stacks

HERE = Path(__file__).resolve().parent
FUNCTIONS_DIR = HERE / "functions"

STACK = "securecart-lab04"
TEMPLATE = "template.yaml"
# Step 3: the security account's side (security.yaml, deployed there first, with that account's credentials).
SECURITY_STACK = "securecart-lab04-security"
SECURITY_TEMPLATE = "security.yaml"
COMPLIANCE_BUS = "securecart-compliance"
COMPLIANCE_LOG_GROUP = "/securecart/compliance"
PAYMENTS_SOURCE = "securecart.payments"
SECTIONS = ("# --- 1. Schemas", "# --- 2. Fraud detection", "# --- 3. Compliance forwarding", "# --- 4. Payment queue")

# Lab 1's resources lab 4 builds on.
BUS = "securecart"
ORDERS_TABLE = "securecart-orders"

# The kit's own.
ORDER_SOURCE = "securecart.checkout"  # not lab 1's securecart.orders: lab 1's rule would run its workflow on every order
FRAUD_SOURCE = "securecart.fraud"
REVIEWS_TABLE = "securecart-fraud-reviews"
CHARGES_TABLE = "securecart-charges"
KIT_ROLE = "securecart-lab04-kit-role"
CHECKOUT = "securecart-checkout"
FRAUD_SCORE = "securecart-fraud-score"
GATEWAY = "securecart-payment-gateway"
FUNCTIONS = {CHECKOUT: "checkout", FRAUD_SCORE: "fraud_score", GATEWAY: "payment_gateway"}
TABLES = {REVIEWS_TABLE: "orderId", CHARGES_TABLE: "chargeId"}
# The kit's observer: a rule copying the fraud workflow's events to a log group (what checks and learners read).
OBSERVER_RULE = "securecart-lab04-observer"
OBSERVER_LOG_GROUP = "/aws/events/securecart-lab04"
_ENV = {"ORDERS_TABLE": ORDERS_TABLE, "EVENT_BUS": BUS, "ORDER_SOURCE": ORDER_SOURCE,
        "REVIEWS_TABLE": REVIEWS_TABLE, "CHARGES_TABLE": CHARGES_TABLE}

PLACE_ORDER = (f"echo '{{\"totalCents\": 150000}}' > order.json && aws lambda invoke --function-name {CHECKOUT} "
               "--payload fileb://order.json out.json   # a guest order of $1,500: screened")
TRACE_EXAMPLE = f"  {PLACE_ORDER}"

# What the lab asks for (README): the thresholds the checks test.
HIGH_TOTAL_CENTS = 100000  # an order of $1,000 or more is screened
HOLD_SCORE = 70  # the workflow holds an order scoring this or more
HOME_COUNTRY = "US"


def _code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


# --- baseline ---------------------------------------------------------------------------------------------------


def provision(ctx) -> None:
    """Create whatever of the kit's baseline is missing; update functions whose code changed."""
    _tables(ctx)
    role_arn = _role(ctx)
    _functions(ctx, role_arn)
    _observer(ctx)


def is_provisioned(ctx) -> bool:
    try:
        ctx.aws("lambda").get_function(FunctionName=GATEWAY)
        ctx.aws("dynamodb").describe_table(TableName=CHARGES_TABLE)
        ctx.aws("events").describe_rule(Name=OBSERVER_RULE, EventBusName=BUS)
    except ClientError:
        return False
    return True


def is_deployed(ctx) -> bool:
    try:
        return stacks.is_complete(ctx.aws("cloudformation"), STACK)
    except (ClientError, OSError):
        return False


def _tables(ctx) -> None:
    dynamodb = ctx.aws("dynamodb")
    existing = set(dynamodb.list_tables(Limit=100)["TableNames"])
    for name, key in TABLES.items():
        if name in existing:
            continue
        dynamodb.create_table(TableName=name, AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                              KeySchema=[{"AttributeName": key, "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST")
        dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})


def _role(ctx) -> str:
    iam = ctx.aws("iam")
    try:
        arn = iam.get_role(RoleName=KIT_ROLE)["Role"]["Arn"]
    except ClientError as exc:
        if _code(exc) != "NoSuchEntity":
            raise
        trust = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
        arn = iam.create_role(RoleName=KIT_ROLE, AssumeRolePolicyDocument=json.dumps(trust),
                              Description="SecureCart lab 4: the kit's checkout, fraud model and gateway")["Role"]["Arn"]
    account, region = ctx.account, ctx.region
    resource = f"arn:aws:{{}}:{region}:{account}:{{}}"
    iam.put_role_policy(RoleName=KIT_ROLE, PolicyName="kit-functions", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:GetItem",
                                            "dynamodb:BatchWriteItem"],
             "Resource": [resource.format("dynamodb", f"table/{t}") for t in (ORDERS_TABLE, *TABLES)]},
            {"Effect": "Allow", "Action": "events:PutEvents", "Resource": resource.format("events", f"event-bus/{BUS}")},
            {"Effect": "Allow", "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
             "Resource": resource.format("logs", "log-group:/aws/lambda/*")},
        ]}))
    return arn


def _observer(ctx) -> None:
    """The kit's rule copying securecart.fraud events (SuspiciousOrder) to a log group (aws logs filter-log-events)."""
    logs, events = ctx.aws("logs"), ctx.aws("events")
    try:
        logs.create_log_group(logGroupName=OBSERVER_LOG_GROUP)
    except ClientError as exc:
        if _code(exc) != "ResourceAlreadyExistsException":
            raise
    events.put_rule(Name=OBSERVER_RULE, EventBusName=BUS, EventPattern=json.dumps({"source": [FRAUD_SOURCE]}),
                    Description="The kit's (lab 4): copies the fraud workflow's events to " + OBSERVER_LOG_GROUP)
    arn = f"arn:aws:logs:{ctx.region}:{ctx.account}:log-group:{OBSERVER_LOG_GROUP}"
    # What the console adds for a log group target: EventBridge may write to this group.
    logs.put_resource_policy(policyName=OBSERVER_RULE, policyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": ["events.amazonaws.com", "delivery.logs.amazonaws.com"]},
                       "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": f"{arn}:*"}]}))
    events.put_targets(Rule=OBSERVER_RULE, EventBusName=BUS, Targets=[{"Id": "log-group", "Arn": arn}])


def _functions(ctx, role_arn: str) -> None:
    functions.ensure(ctx.aws("lambda"), FUNCTIONS_DIR, FUNCTIONS, role_arn=role_arn, environment=_ENV,
                     timeout=30, label="SecureCart lab 4 (the kit's)")


# --- names --------------------------------------------------------------------------------------------------------


def stack_resources(ctx, resource_type: str | None = None) -> list[dict]:
    """The stack's resources (of one type, when given), as DescribeStackResources lists them; [] without a stack."""
    cf = ctx.aws("cloudformation")
    if stacks.find(cf, STACK) is None:
        return []
    return [r for r in cf.describe_stack_resources(StackName=STACK)["StackResources"]
            if resource_type is None or r["ResourceType"] == resource_type]


def state_machine_arn(ctx) -> str:
    """The fraud-check workflow (the stack's EXPRESS state machine) for `trace 4`; LabError when there is none."""
    from securecart_lab.errors import LabError

    machines = [r["PhysicalResourceId"] for r in stack_resources(ctx, "AWS::StepFunctions::StateMachine")]
    if not machines:
        raise LabError(f"Stack {STACK} has no state machine yet.",
                       "Add the fraud-check workflow to section 2 of template.yaml (README, step 2) and deploy 4.")
    return machines[0]


# --- deploy -------------------------------------------------------------------------------------------------------


def deploy(ctx, source: Path) -> list[str]:
    """Apply source/template.yaml to stack securecart-lab04 (parameters from source/parameters.json and
    --parameter). With ctx.preview, only show the change set."""
    path = source / TEMPLATE
    stacks.load_template(path, ctx.lab.number)
    body = path.read_text(encoding="utf-8")
    parameters = stacks.read_parameters(source, ctx.parameters)
    if not ctx.preview:  # a template CloudFormation rejects stops the deploy before security.yaml changes anything
        stacks.check(ctx.aws("cloudformation"), STACK, path, body, parameters)
    lines = _deploy_security(ctx, source)
    lines += stacks.apply(ctx.aws("cloudformation"), STACK, path, body, parameters=parameters, preview=ctx.preview)
    if ctx.preview:
        return lines
    return lines + [f"Place an order: {PLACE_ORDER}"]


def _deploy_security(ctx, source: Path) -> list[str]:
    """security.yaml, as the security account (config.SECURITY_ACCOUNT_ID), to stack securecart-lab04-security:
    the bus SecureCart forwards to must exist, and say who may send, before the rule that forwards to it."""
    from securecart_lab.config import SECURITY_ACCOUNT_ID

    path = source / SECURITY_TEMPLATE
    stacks.load_template(path, ctx.lab.number)
    lines = stacks.apply(ctx.aws("cloudformation", SECURITY_ACCOUNT_ID), SECURITY_STACK, path,
                         path.read_text(encoding="utf-8"), preview=ctx.preview)
    return [f"security.yaml, in the security account ({SECURITY_ACCOUNT_ID}):", *lines, f"{TEMPLATE}:"]
