"""Lab 1's baseline (tables, queues, bus, roles, log group, Lambda functions) and the deploy of the learner's files.

Workspace files (all JSON, with ${...} placeholders so nobody types account ids):
  state_machine.asl.json  the order-processing state machine (Amazon States Language)
  rules.json              EventBridge rules on the securecart bus: [{Name, EventPattern, Targets: [{Id, Arn, ...}]}]
  role_policy.json        the IAM policy of the state machine's role
  logging.json            the state machine's loggingConfiguration (CreateStateMachine's shape)
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import ClientError

from securecart_lab.errors import WorkspaceFileError
from securecart_lab.labs import functions, workspace

HERE = Path(__file__).resolve().parent
FUNCTIONS_DIR = HERE / "functions"

BUS = "securecart"
STATE_MACHINE = "securecart-order-processing"
ROLE = "securecart-order-processing-role"
ROLE_POLICY = "securecart-order-processing"
EVENTS_ROLE = "securecart-events-role"
LAMBDA_ROLE = "securecart-lab01-lambda-role"
LOG_GROUP = "/aws/vendedlogs/states/securecart-order-processing"
ORDERS_TABLE = "securecart-orders"
INVENTORY_TABLE = "securecart-inventory"
PAYMENTS_TABLE = "securecart-payments"
RESTOCK_TABLE = "securecart-restock-requests"
NOTIFICATIONS_QUEUE = "securecart-notifications"
SUPPORT_QUEUE = "securecart-support"

TABLES = {
    ORDERS_TABLE: ("orderId",),
    INVENTORY_TABLE: ("sku",),
    PAYMENTS_TABLE: ("orderId",),
    RESTOCK_TABLE: ("sku", "requestId"),
}
# Each queue with its dead-letter queue: a message received 5 times without being deleted moves there.
QUEUES = {NOTIFICATIONS_QUEUE: f"{NOTIFICATIONS_QUEUE}-dlq", SUPPORT_QUEUE: f"{SUPPORT_QUEUE}-dlq"}
_ENV = {
    "ORDERS_TABLE": ORDERS_TABLE, "INVENTORY_TABLE": INVENTORY_TABLE, "PAYMENTS_TABLE": PAYMENTS_TABLE,
    "RESTOCK_TABLE": RESTOCK_TABLE, "NOTIFICATIONS_QUEUE": NOTIFICATIONS_QUEUE, "EVENT_BUS": BUS,
}
FUNCTIONS = {
    "validate-order": "validate_order",
    "authorize-payment": "authorize_payment",
    "reserve-inventory": "reserve_inventory",
    "notify-customer": "notify_customer",
    "restock": "restock",
}
WORKSPACE_FILES = ("state_machine.asl.json", "rules.json", "role_policy.json", "logging.json")


def _sibling(name: str):
    """A module next to this file (provision.py is loaded by path, not as part of a package)."""
    key = f"securecart_lab01_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, HERE / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


asl = _sibling("asl")


# --- baseline ---------------------------------------------------------------------------------------------------


def provision(ctx) -> None:
    """Create whatever of the baseline is missing; update functions whose code changed. Fast when all is there."""
    _tables(ctx)
    _queues(ctx)
    _bus(ctx)
    _log_group(ctx)
    _roles(ctx)
    _functions(ctx)


def is_provisioned(ctx) -> bool:
    try:
        ctx.aws("dynamodb").describe_table(TableName=INVENTORY_TABLE)
        ctx.aws("lambda").get_function(FunctionName="restock")
        ctx.aws("events").describe_event_bus(Name=BUS)
    except ClientError:
        return False
    return True


def is_deployed(ctx) -> bool:
    try:
        ctx.aws("stepfunctions").describe_state_machine(stateMachineArn=state_machine_arn(ctx))
    except ClientError:
        return False
    return True


def _code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def _tables(ctx) -> None:
    dynamodb = ctx.aws("dynamodb")
    existing = set(dynamodb.list_tables(Limit=100)["TableNames"])
    for name, keys in TABLES.items():
        if name in existing:
            continue
        dynamodb.create_table(
            TableName=name,
            AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in keys],
            KeySchema=[{"AttributeName": k, "KeyType": kind} for k, kind in zip(keys, ("HASH", "RANGE"))],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        if name == INVENTORY_TABLE:
            _load_inventory(dynamodb)


def _load_inventory(dynamodb) -> None:
    """The seed's inventory (seed/inventory.csv), loaded once, when the table is created."""
    from securecart_lab.postgres.seed import seed_rows

    rows = seed_rows()["inventory"]
    for start in range(0, len(rows), 25):
        request = {INVENTORY_TABLE: [
            {"PutRequest": {"Item": {
                "sku": {"S": row["sku"]},
                "stock": {"N": str(row["stock"])},
                "low_stock_threshold": {"N": str(row["low_stock_threshold"])},
            }}}
            for row in rows[start:start + 25]
        ]}
        while request:
            request = dynamodb.batch_write_item(RequestItems=request).get("UnprocessedItems") or None


def _queues(ctx) -> None:
    sqs = ctx.aws("sqs")
    for name, dlq in QUEUES.items():
        dlq_url = sqs.create_queue(QueueName=dlq)["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"})
        try:
            sqs.create_queue(QueueName=name, Attributes={"RedrivePolicy": redrive})
        except ClientError as exc:
            if _code(exc) not in ("QueueAlreadyExists", "QueueNameExists"):
                raise


def _bus(ctx) -> None:
    try:
        ctx.aws("events").create_event_bus(Name=BUS)
    except ClientError as exc:
        if _code(exc) != "ResourceAlreadyExistsException":
            raise


def _log_group(ctx) -> None:
    try:
        ctx.aws("logs").create_log_group(logGroupName=LOG_GROUP)
    except ClientError as exc:
        if _code(exc) != "ResourceAlreadyExistsException":
            raise


def _trust(service: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]})


def _ensure_role(iam, name: str, service: str, description: str) -> str:
    try:
        return iam.get_role(RoleName=name)["Role"]["Arn"]
    except ClientError as exc:
        if _code(exc) != "NoSuchEntity":
            raise
    return iam.create_role(RoleName=name, AssumeRolePolicyDocument=_trust(service), Description=description)["Role"]["Arn"]


def _roles(ctx) -> None:
    iam = ctx.aws("iam")
    _ensure_role(iam, ROLE, "states.amazonaws.com", "SecureCart order processing (lab 1); its policy is role_policy.json")
    _ensure_role(iam, EVENTS_ROLE, "events.amazonaws.com", "Lets EventBridge start the order-processing state machine")
    iam.put_role_policy(RoleName=EVENTS_ROLE, PolicyName="start-order-processing", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "states:StartExecution", "Resource": state_machine_arn(ctx)}]}))
    _ensure_role(iam, LAMBDA_ROLE, "lambda.amazonaws.com", "SecureCart lab 1 functions")
    account = ctx.account
    arn = f"arn:aws:{{}}:{ctx.region}:{account}:{{}}"
    iam.put_role_policy(RoleName=LAMBDA_ROLE, PolicyName="order-functions", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:UpdateItem",
                                            "dynamodb:PutItem", "dynamodb:TransactWriteItems"],
             "Resource": [arn.format("dynamodb", f"table/{t}") for t in TABLES]},
            {"Effect": "Allow", "Action": ["sqs:GetQueueUrl", "sqs:SendMessage"],
             "Resource": arn.format("sqs", NOTIFICATIONS_QUEUE)},
            {"Effect": "Allow", "Action": "events:PutEvents", "Resource": arn.format("events", f"event-bus/{BUS}")},
            {"Effect": "Allow", "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
             "Resource": arn.format("logs", "log-group:/aws/lambda/*")},
        ]}))


def _functions(ctx) -> None:
    role_arn = ctx.aws("iam").get_role(RoleName=LAMBDA_ROLE)["Role"]["Arn"]
    functions.ensure(ctx.aws("lambda"), FUNCTIONS_DIR, FUNCTIONS, role_arn=role_arn, environment=_ENV,
                     timeout=10, label="SecureCart lab 1")


# --- names --------------------------------------------------------------------------------------------------------


def state_machine_arn(ctx) -> str:
    return f"arn:aws:states:{ctx.region}:{ctx.account}:stateMachine:{STATE_MACHINE}"


def queue_url(ctx, name: str) -> str:
    return ctx.aws("sqs").get_queue_url(QueueName=name)["QueueUrl"]


# --- deploy -------------------------------------------------------------------------------------------------------


@dataclass
class Workspace:
    """The learner's four files, parsed, with placeholders resolved."""

    definition: dict
    rules: list
    policy: dict
    logging: dict


# Step Functions' limit on a definition (CreateStateMachine/UpdateStateMachine): checked before anything is sent.
MAX_DEFINITION = 1_048_576


def deploy(ctx, source: Path) -> list[str]:
    """Validate every file in `source` and every request built from them (botocore's own parameter validation, the
    same the SDK runs before sending), then apply: role policy, state machine, rules. Raises WorkspaceFileError
    (file, line, what is wrong) before changing anything; any failure while applying (an AWS error, an interrupt,
    anything) restores the previous policy, state machine and rules."""
    ws = load_workspace(ctx, source)
    iam, sfn = ctx.aws("iam"), ctx.aws("stepfunctions")
    role_arn = iam.get_role(RoleName=ROLE)["Role"]["Arn"]
    definition = json.dumps(ws.definition, indent=2)
    if len(definition) > MAX_DEFINITION:
        raise WorkspaceFileError(source / "state_machine.asl.json",
                                 f"the definition is {len(definition):,} characters; Step Functions accepts at most "
                                 f"{MAX_DEFINITION:,}", hint="Nothing was changed. Split the work into smaller state machines.")
    machine = {"definition": definition, "roleArn": role_arn, "loggingConfiguration": ws.logging}
    _validate_requests(ctx, source, ws, machine)
    snapshot = _snapshot(ctx)
    stage = "role_policy.json"
    try:
        iam.put_role_policy(RoleName=ROLE, PolicyName=ROLE_POLICY, PolicyDocument=json.dumps(ws.policy))
        applied = [f"IAM role {ROLE}: policy from role_policy.json ({len(ws.policy['Statement'])} statements)"]
        stage = "state_machine.asl.json"
        if snapshot.machine is not None:
            sfn.update_state_machine(stateMachineArn=state_machine_arn(ctx), **machine)
            verb = "updated"
        else:
            sfn.create_state_machine(name=STATE_MACHINE, type="STANDARD", **machine)
            verb = "created"
        applied.append(f"State machine {STATE_MACHINE}: {verb} ({len(ws.definition['States'])} states, "
                       f"logging {ws.logging.get('level', 'OFF')})")
        stage = "rules.json"
        applied += _apply_rules(ctx, ws.rules)
    except BaseException as exc:
        _rollback(ctx, snapshot)
        if isinstance(exc, ClientError):
            service = {"role_policy.json": "IAM", "state_machine.asl.json": "Step Functions",
                       "rules.json": "EventBridge"}[stage]
            raise WorkspaceFileError(source / stage, f"{service} rejected it: {exc.response['Error'].get('Message', exc)}",
                                     hint="Nothing was changed; the previous deployment is still running.") from None
        raise
    return applied


def _validate_requests(ctx, source: Path, ws: Workspace, machine: dict) -> None:
    """Run botocore's parameter validation on every request the deploy will send, before sending any."""
    from botocore.exceptions import ParamValidationError
    from botocore.validate import validate_parameters

    requests = [
        ("role_policy.json", "iam", "PutRolePolicy",
         {"RoleName": ROLE, "PolicyName": ROLE_POLICY, "PolicyDocument": json.dumps(ws.policy)}),
        ("logging.json", "stepfunctions", "UpdateStateMachine",
         {"stateMachineArn": state_machine_arn(ctx), **machine}),
    ]
    for rule in ws.rules:
        requests.append(("rules.json", "events", "PutRule",
                         {"Name": rule["Name"], "EventBusName": BUS, "EventPattern": json.dumps(rule["EventPattern"]),
                          "State": rule.get("State", "ENABLED"), "Description": rule.get("Description", "")}))
        requests.append(("rules.json", "events", "PutTargets",
                         {"Rule": rule["Name"], "EventBusName": BUS, "Targets": rule["Targets"]}))
    for name, service, operation, params in requests:
        model = ctx.aws(service).meta.service_model.operation_model(operation)
        try:
            validate_parameters(params, model.input_shape)
        except ParamValidationError as exc:
            problems = [line.strip() for line in str(exc).splitlines()[1:] if line.strip()]
            more = f" ({len(problems) - 1} more after this one)" if len(problems) > 1 else ""
            raise WorkspaceFileError(source / name, (problems[0] if problems else str(exc)) + more,
                                     hint="Fix the file and deploy again; nothing was changed.") from None


@dataclass
class _Snapshot:
    policy: str | None
    machine: dict | None  # definition, roleArn, loggingConfiguration; None when there was no state machine
    rules: list  # [(put_rule kwargs, targets)]


def _snapshot(ctx) -> _Snapshot:
    events = ctx.aws("events")
    try:
        described = ctx.aws("stepfunctions").describe_state_machine(stateMachineArn=state_machine_arn(ctx))
        machine = {"definition": described["definition"], "roleArn": described["roleArn"],
                   "loggingConfiguration": described.get("loggingConfiguration") or {"level": "OFF"}}
    except ClientError:
        machine = None
    rules = []
    for rule in events.list_rules(EventBusName=BUS).get("Rules", []):
        kwargs = {k: rule[k] for k in ("Name", "EventPattern", "State", "Description") if rule.get(k) is not None}
        targets = events.list_targets_by_rule(Rule=rule["Name"], EventBusName=BUS).get("Targets", [])
        rules.append((kwargs, targets))
    return _Snapshot(_current_policy(ctx.aws("iam")), machine, rules)


def _rollback(ctx, snapshot: _Snapshot) -> None:
    """Put back the policy, state machine and rules as they were before this deploy."""
    iam, sfn, events = ctx.aws("iam"), ctx.aws("stepfunctions"), ctx.aws("events")
    _restore_policy(iam, snapshot.policy)
    arn = state_machine_arn(ctx)
    if snapshot.machine is None:
        try:
            sfn.delete_state_machine(stateMachineArn=arn)
        except ClientError:
            pass
    else:
        sfn.update_state_machine(stateMachineArn=arn, **snapshot.machine)
    kept = {kwargs["Name"] for kwargs, _ in snapshot.rules}
    for rule in events.list_rules(EventBusName=BUS).get("Rules", []):
        targets = events.list_targets_by_rule(Rule=rule["Name"], EventBusName=BUS).get("Targets", [])
        if targets:
            events.remove_targets(Rule=rule["Name"], EventBusName=BUS, Ids=[t["Id"] for t in targets])
        if rule["Name"] not in kept:
            events.delete_rule(Name=rule["Name"], EventBusName=BUS)
    for kwargs, targets in snapshot.rules:
        events.put_rule(EventBusName=BUS, **kwargs)
        if targets:
            events.put_targets(Rule=kwargs["Name"], EventBusName=BUS, Targets=targets)


def _current_policy(iam) -> str | None:
    try:
        document = iam.get_role_policy(RoleName=ROLE, PolicyName=ROLE_POLICY)["PolicyDocument"]
    except ClientError:
        return None
    return document if isinstance(document, str) else json.dumps(document)


def _restore_policy(iam, document: str | None) -> None:
    if document is None:
        iam.delete_role_policy(RoleName=ROLE, PolicyName=ROLE_POLICY)
    else:
        iam.put_role_policy(RoleName=ROLE, PolicyName=ROLE_POLICY, PolicyDocument=document)


def _apply_rules(ctx, rules: list) -> list[str]:
    events, lam = ctx.aws("events"), ctx.aws("lambda")
    applied = []
    wanted = {rule["Name"] for rule in rules}
    others = _rules_owned_elsewhere(ctx)
    for old in events.list_rules(EventBusName=BUS).get("Rules", []):
        if old["Name"] not in wanted and old["Name"] not in others and not old.get("ManagedBy"):
            targets = events.list_targets_by_rule(Rule=old["Name"], EventBusName=BUS).get("Targets", [])
            if targets:
                events.remove_targets(Rule=old["Name"], EventBusName=BUS, Ids=[t["Id"] for t in targets])
            events.delete_rule(Name=old["Name"], EventBusName=BUS)
            applied.append(f"EventBridge rule {old['Name']}: deleted (not in rules.json)")
    for rule in rules:
        name = rule["Name"]
        rule_arn = events.put_rule(Name=name, EventBusName=BUS, EventPattern=json.dumps(rule["EventPattern"]),
                                   State=rule.get("State", "ENABLED"), Description=rule.get("Description", ""))["RuleArn"]
        targets = rule["Targets"]
        current = events.list_targets_by_rule(Rule=name, EventBusName=BUS).get("Targets", [])
        stale = [t["Id"] for t in current if t["Id"] not in {t["Id"] for t in targets}]
        if stale:
            events.remove_targets(Rule=name, EventBusName=BUS, Ids=stale)
        events.put_targets(Rule=name, EventBusName=BUS, Targets=targets)
        for target in targets:
            if asl.LAMBDA_ARN.match(target["Arn"]):
                _allow_events_to_invoke(lam, asl.function_name(target["Arn"]), name, rule_arn)
        applied.append(f"EventBridge rule {name}: {', '.join(t['Id'] for t in targets)}")
    return applied


def _rules_owned_elsewhere(ctx) -> set[str]:
    """Rules on the bus that rules.json does not own: a CloudFormation stack's (lab 4's template) and the kit's
    own (named securecart-labNN-...). Deploying lab 1 leaves them alone."""
    names: set[str] = set()
    services = (ctx.engine.health() or {}).get("services", {})
    if services.get("cloudformation", "running") != "running":  # not loaded yet: no stack exists (and asking loads it)
        summaries = []
    else:
        try:
            summaries = ctx.aws("cloudformation").list_stacks().get("StackSummaries", [])
        except ClientError:
            summaries = []
    cf = ctx.aws("cloudformation")
    for summary in summaries:
        if summary["StackStatus"] == "DELETE_COMPLETE":
            continue
        try:
            resources = cf.describe_stack_resources(StackName=summary["StackName"])["StackResources"]
        except ClientError:
            continue
        names |= {r.get("PhysicalResourceId", "").split("|")[-1] for r in resources
                  if r["ResourceType"] == "AWS::Events::Rule"}
    return names | {rule["Name"] for rule in ctx.aws("events").list_rules(EventBusName=BUS, NamePrefix="securecart-lab")
                    .get("Rules", [])}


def _allow_events_to_invoke(lam, function: str, rule: str, rule_arn: str) -> None:
    """What the console does for a Lambda target: a resource policy statement letting this rule invoke it."""
    try:
        lam.add_permission(FunctionName=function, StatementId=f"events-{rule}"[:100], Action="lambda:InvokeFunction",
                           Principal="events.amazonaws.com", SourceArn=rule_arn)
    except ClientError as exc:
        if _code(exc) != "ResourceConflictException":
            raise


# --- reading and validating the workspace ---------------------------------------------------------------------


def load_workspace(ctx, source: Path) -> Workspace:
    """Parse, resolve and validate the four files; raise WorkspaceFileError for the first problem found."""
    texts, documents = {}, {}
    for name in WORKSPACE_FILES:
        path = source / name
        if not path.exists() and not path.is_symlink():
            raise WorkspaceFileError(path, "file not found",
                                     hint=f'Run "securecart-lab reset {ctx.lab.number}" to get the starter files back.')
        texts[name] = workspace.read_text(path, source)  # refuses links out, folders, non-UTF-8, oversized files
        documents[name] = parse_json(path, texts[name])
    resolver = Resolver(ctx)
    resolved = {name: resolver.resolve(source / name, texts[name], doc) for name, doc in documents.items()}
    ws = Workspace(resolved["state_machine.asl.json"], resolved["rules.json"], resolved["role_policy.json"],
                   resolved["logging.json"])
    _validate_definition(ctx, source / "state_machine.asl.json", texts["state_machine.asl.json"], ws.definition)
    _validate_rules(source / "rules.json", texts["rules.json"], ws.rules)
    _validate_policy(source / "role_policy.json", texts["role_policy.json"], ws.policy)
    _validate_logging(source / "logging.json", texts["logging.json"], ws.logging)
    return ws


def parse_json(path: Path, text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        comma = _trailing_comma(text, exc)
        if comma is not None:
            line = text.count("\n", 0, comma) + 1
            column = comma - (text.rfind("\n", 0, comma) + 1) + 1
            raise WorkspaceFileError(path, f"invalid JSON at line {line}, column {column}: trailing comma (JSON allows "
                                           "no comma after the last item of an object or list)", line=line,
                                     hint="Remove that comma and deploy again; nothing was changed.") from None
        raise WorkspaceFileError(path, f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
                                 line=exc.lineno, hint="Fix the file and deploy again; nothing was changed.") from None
    except RecursionError:
        raise WorkspaceFileError(path, "is nested too deeply to be a lab file", hint="Fix the file and deploy again.")


def _trailing_comma(text: str, exc: json.JSONDecodeError) -> int | None:
    """The offset of the comma when the parser stopped at a closing } or ] right after one, else None."""
    if exc.pos >= len(text) or text[exc.pos] not in "}]":
        return None
    before = text[:exc.pos].rstrip()
    return len(before) - 1 if before.endswith(",") else None


def line_of(text: str, path: tuple[str, ...]) -> int | None:
    """The line where the value at `path` (object keys; list indexes are skipped) appears, found by scanning
    for each key in turn; None when a key cannot be found."""
    position, found = 0, None
    for key in path:
        if key.isdigit():
            continue
        match = re.compile(r'"' + re.escape(key) + r'"\s*:').search(text, position)
        if match is None:
            break
        position, found = match.end(), match.start()
    return None if found is None else text.count("\n", 0, found) + 1


class Resolver:
    """Replaces ${...} placeholders in string values with names from the running engine."""

    PATTERN = re.compile(r"\$\{([A-Za-z]+)(?::([^}]+))?\}")
    HELP = ("${AccountId}, ${Region}, ${StateMachineArn}, ${EventsRoleArn}, ${LogGroupArn}, ${EventBusArn}, "
            "${FunctionArn:NAME}, ${QueueUrl:NAME}, ${QueueArn:NAME}, ${TableArn:NAME}")

    def __init__(self, ctx):
        self.ctx = ctx
        self.cache: dict[tuple, str] = {}

    def resolve(self, path: Path, text: str, document):
        if isinstance(document, dict):
            return {k: self.resolve(path, text, v) for k, v in document.items()}
        if isinstance(document, list):
            return [self.resolve(path, text, v) for v in document]
        if isinstance(document, str):
            return self.PATTERN.sub(lambda m: self._value(path, text, m), document)
        return document

    def _value(self, path: Path, text: str, match: re.Match) -> str:
        key = (match.group(1), match.group(2))
        if key not in self.cache:
            try:
                value = self._lookup(*key)
            except (ClientError, KeyError):
                value = None
            if value is None:
                line = text.count("\n", 0, text.find(match.group(0))) + 1
                what = f"{key[0]}:{key[1]}" if key[1] else key[0]
                message, hint = f"placeholder {match.group(0)} does not name anything that exists ({what})", ""
                names = self._names(key[0]) if key[1] else None
                if names:  # a near miss: the name meant, and what there is
                    close = difflib.get_close_matches(key[1], names, n=1)
                    message += f": did you mean ${{{key[0]}:{close[0]}}}?" if close else ""
                    hint = f"{self.LABELS[key[0]]}: {', '.join(sorted(names))}. "
                elif key[0] not in self.KINDS:
                    close = difflib.get_close_matches(key[0], self.KINDS, n=1)
                    message += f": did you mean ${{{close[0]}{':' + key[1] if key[1] else ''}}}?" if close else ""
                raise WorkspaceFileError(path, message, line=line, hint=f"{hint}Placeholders: {self.HELP}.")
            self.cache[key] = value
        return self.cache[key]

    KINDS = ("AccountId", "Region", "StateMachineArn", "EventsRoleArn", "LogGroupArn", "EventBusArn", "FunctionArn",
             "QueueUrl", "QueueArn", "TableArn")
    LABELS = {"FunctionArn": "Functions", "QueueUrl": "Queues", "QueueArn": "Queues", "TableArn": "Tables",
              "LogGroupArn": "Log groups"}

    def _names(self, kind: str) -> list[str]:
        """What a placeholder of `kind` may name in the running engine (empty when it takes no name)."""
        aws = self.ctx.aws
        try:
            if kind == "FunctionArn":
                return [f["FunctionName"] for page in aws("lambda").get_paginator("list_functions").paginate()
                        for f in page["Functions"]]
            if kind in ("QueueUrl", "QueueArn"):
                return [url.rsplit("/", 1)[-1] for url in aws("sqs").list_queues().get("QueueUrls", [])]
            if kind == "TableArn":
                return aws("dynamodb").list_tables()["TableNames"]
            if kind == "LogGroupArn":
                return [g["logGroupName"] for g in aws("logs").describe_log_groups()["logGroups"]]
        except ClientError:
            pass
        return []

    def _lookup(self, kind: str, name: str | None) -> str | None:
        ctx = self.ctx
        account, region = ctx.account, ctx.region
        simple = {
            "AccountId": account,
            "Region": region,
            "StateMachineArn": state_machine_arn(ctx),
            "LogGroupArn": f"arn:aws:logs:{region}:{account}:log-group:{LOG_GROUP}:*",
            "EventBusArn": f"arn:aws:events:{region}:{account}:event-bus/{BUS}",
        }
        if name is None:
            if kind == "EventsRoleArn":
                return ctx.aws("iam").get_role(RoleName=EVENTS_ROLE)["Role"]["Arn"]
            return simple.get(kind)
        if kind == "FunctionArn":
            return ctx.aws("lambda").get_function(FunctionName=name)["Configuration"]["FunctionArn"]
        if kind == "QueueUrl":
            return queue_url(ctx, name)
        if kind == "QueueArn":
            url = queue_url(ctx, name)
            return ctx.aws("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        if kind == "TableArn":
            return ctx.aws("dynamodb").describe_table(TableName=name)["Table"]["TableArn"]
        if kind == "LogGroupArn":
            groups = ctx.aws("logs").describe_log_groups(logGroupNamePrefix=name)["logGroups"]
            if not any(g["logGroupName"] == name for g in groups):
                return None
            return f"arn:aws:logs:{region}:{account}:log-group:{name}:*"
        return None


def _fail(path: Path, text: str, where: tuple[str, ...], message: str, hint: str | None = None):
    raise WorkspaceFileError(path, message, line=line_of(text, where),
                             hint=hint or "Fix the file and deploy again; nothing was changed.")


def _validate_definition(ctx, path: Path, text: str, definition) -> None:
    kit_functions = set(FUNCTIONS)

    def function_exists(name: str) -> bool:
        if name in kit_functions:
            return True
        try:
            ctx.aws("lambda").get_function(FunctionName=name)
        except ClientError:
            return False
        kit_functions.add(name)
        return True

    def table_exists(name: str) -> bool:
        return name in TABLES or name in ctx.aws("dynamodb").list_tables(Limit=100)["TableNames"]

    problems = asl.validate(definition, function_exists, table_exists)
    if problems:
        first, rest = problems[0], problems[1:]
        message = first.message
        if rest:
            message += f"\n{len(rest)} more problem{'s' if len(rest) > 1 else ''}:" + "".join(
                f"\n  {path}:{line_of(text, p.path) or '?'}: {p.message}" for p in rest)
        _fail(path, text, first.path, message)


def _validate_rules(path: Path, text: str, rules) -> None:
    if not isinstance(rules, list):
        _fail(path, text, (), "rules.json must be a JSON list of rules: [{\"Name\": ..., \"EventPattern\": ..., \"Targets\": [...]}]")
    names = set()
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict):
            _fail(path, text, (), f"rule {i + 1} must be an object")
        name = rule.get("Name")
        if not isinstance(name, str) or not re.fullmatch(r"[\w.\-]{1,64}", name):
            _fail(path, text, ("Name",), f"rule {i + 1} needs a Name (letters, digits, . _ -; at most 64)")
        if name in names:
            _fail(path, text, ("Name",), f"two rules are named {name!r}")
        names.add(name)
        if rule.get("EventBusName", BUS) != BUS:
            _fail(path, text, ("EventBusName",), f"rule {name!r} is on bus {rule['EventBusName']!r}; this lab's rules "
                                                 f"belong on the {BUS!r} bus")
        pattern = rule.get("EventPattern")
        if not isinstance(pattern, dict) or not pattern:
            _fail(path, text, ("EventPattern",), f"rule {name!r} needs an EventPattern object, e.g. "
                                                 '{"source": ["securecart.orders"], "detail-type": ["OrderPlaced"]}')
        _validate_pattern(path, text, name, pattern)
        targets = rule.get("Targets")
        if not isinstance(targets, list) or not targets or len(targets) > 5:
            _fail(path, text, ("Targets",), f"rule {name!r} needs 1 to 5 Targets")
        for target in targets:
            if not isinstance(target, dict) or not target.get("Id") or not isinstance(target.get("Arn"), str):
                _fail(path, text, ("Targets",), f"each target of rule {name!r} needs an Id and an Arn")
            if not target["Arn"].startswith("arn:"):
                _fail(path, text, ("Arn",), f"target {target['Id']!r} of rule {name!r} has Arn {target['Arn']!r}; "
                                            "use an ARN or a placeholder such as ${FunctionArn:restock}")
            if ":states:" in target["Arn"] and ":stateMachine:" in target["Arn"] and not target.get("RoleArn"):
                _fail(path, text, ("Targets",), f"target {target['Id']!r} of rule {name!r} starts a state machine "
                                                'and needs "RoleArn": "${EventsRoleArn}"')


def _validate_pattern(path: Path, text: str, rule: str, pattern: dict) -> None:
    for key, value in pattern.items():
        if isinstance(value, dict):
            _validate_pattern(path, text, rule, value)
        elif not isinstance(value, list):
            _fail(path, text, (key,), f"in the EventPattern of rule {rule!r}, {key!r} must be a list of values to "
                                      f'match, e.g. "{key}": [{json.dumps(value)}]')


def _validate_policy(path: Path, text: str, policy) -> None:
    statements = policy.get("Statement") if isinstance(policy, dict) else None
    if not isinstance(statements, list) or not statements:
        _fail(path, text, ("Statement",), 'role_policy.json must be an IAM policy: {"Version": "2012-10-17", '
                                          '"Statement": [...]}')
    for i, statement in enumerate(statements):
        if not isinstance(statement, dict):
            _fail(path, text, ("Statement",), f"Statement[{i}] must be an object")
        for key, alternative in (("Effect", None), ("Action", "NotAction"), ("Resource", "NotResource")):
            if key not in statement and alternative not in statement:
                _fail(path, text, ("Statement",), f"Statement[{i}] needs {key}" + (f" (or {alternative})" if alternative else ""))
        if statement["Effect"] not in ("Allow", "Deny"):
            _fail(path, text, ("Effect",), f"Statement[{i}].Effect must be Allow or Deny")
        for key in ("Action", "NotAction", "Resource", "NotResource"):
            if key not in statement:
                continue
            value = statement[key]
            values = value if isinstance(value, list) else [value]
            if not values or not all(isinstance(v, str) and v for v in values):
                _fail(path, text, (key,), f"Statement[{i}].{key} must be a string or a list of strings")


def _validate_logging(path: Path, text: str, logging) -> None:
    if not isinstance(logging, dict):
        _fail(path, text, (), 'logging.json must be an object like {"level": "ALL", "destinations": [...]}')
    level = logging.get("level", "OFF")
    if level not in ("ALL", "ERROR", "FATAL", "OFF"):
        _fail(path, text, ("level",), f"level must be ALL, ERROR, FATAL or OFF, found {level!r}")
    destinations = logging.get("destinations", [])
    if level != "OFF" and not destinations:
        _fail(path, text, ("level",), f"level {level} needs a destination: "
                                      '"destinations": [{"cloudWatchLogsLogGroup": {"logGroupArn": "${LogGroupArn}"}}]')
    for destination in destinations if isinstance(destinations, list) else [None]:
        arn = ((destination or {}).get("cloudWatchLogsLogGroup") or {}).get("logGroupArn") if isinstance(destination, dict) else None
        if not isinstance(arn, str) or ":log-group:" not in arn:
            _fail(path, text, ("destinations",), "each destination needs cloudWatchLogsLogGroup.logGroupArn, "
                                                 'e.g. "${LogGroupArn}"')
