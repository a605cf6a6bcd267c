"""Lab 2 checks: the multi-tier stack's structure, read through the AWS API, then its behaviour end to end
through the load balancer's URL, verified in PostgreSQL."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import psycopg
from botocore.exceptions import ClientError

from securecart_lab import config
from securecart_lab.config import Settings
from securecart_lab.checking import check, failed, passed
from securecart_lab.emulator.bridges import userdata
from securecart_lab.errors import LabError
from securecart_lab.postgres import topology

STACK = "securecart-lab02"
APP_PORT = 8080
DB_PORT = 5432
RECOVERY_SECONDS = 30
SETTLE_SECONDS = 10  # how long a check waits for the health checks' verdict on just registered targets
ANYWHERE = {"0.0.0.0/0", "::/0"}


# --- reading the stack -------------------------------------------------------------------------------------

def _resources(ctx) -> dict[str, list[str]]:
    """Physical ids of the stack's resources by type (cached for the run)."""
    if "resources" not in ctx.cache:
        cf = ctx.aws("cloudformation")
        try:
            found = cf.describe_stack_resources(StackName=STACK)["StackResources"]
        except Exception:
            raise LabError(f"Stack {STACK} does not exist.", 'Run "securecart-lab deploy 2".') from None
        by_type: dict[str, list[str]] = {}
        for r in found:
            if r.get("PhysicalResourceId"):
                by_type.setdefault(r["ResourceType"], []).append(r["PhysicalResourceId"])
        ctx.cache["resources"] = by_type
    return ctx.cache["resources"]


def _one(ctx, resource_type: str, what: str) -> str:
    ids = _resources(ctx).get(resource_type) or []
    if not ids:
        raise LabError(f"The stack has no {what} ({resource_type}).")
    return ids[0]


def _subnets(ctx) -> dict[str, dict]:
    """subnet id -> {az, public}: public when its route table sends 0.0.0.0/0 to an internet gateway."""
    if "subnets" not in ctx.cache:
        ec2 = ctx.aws("ec2")
        vpc = _one(ctx, "AWS::EC2::VPC", "VPC")
        flt = [{"Name": "vpc-id", "Values": [vpc]}]
        tables = ec2.describe_route_tables(Filters=flt)["RouteTables"]

        def to_internet(table) -> bool:
            return any(r.get("DestinationCidrBlock") == "0.0.0.0/0" and str(r.get("GatewayId", "")).startswith("igw-")
                       for r in table.get("Routes", []))

        main = next((t for t in tables if any(a.get("Main") for a in t.get("Associations", []))), None)
        explicit = {a["SubnetId"]: t for t in tables for a in t.get("Associations", []) if a.get("SubnetId")}
        ctx.cache["subnets"] = {
            s["SubnetId"]: {"az": s["AvailabilityZone"],
                            "public": to_internet(explicit.get(s["SubnetId"]) or main or {})}
            for s in ec2.describe_subnets(Filters=flt)["Subnets"]
        }
    return ctx.cache["subnets"]


def _group(ctx):
    name = _one(ctx, "AWS::AutoScaling::AutoScalingGroup", "Auto Scaling group")
    return ctx.aws("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]


def _load_balancer(ctx):
    arn = _one(ctx, "AWS::ElasticLoadBalancingV2::LoadBalancer", "load balancer")
    return ctx.aws("elbv2").describe_load_balancers(LoadBalancerArns=[arn])["LoadBalancers"][0]


def _database(ctx):
    ident = _one(ctx, "AWS::RDS::DBInstance", "RDS DB instance")
    return ctx.aws("rds").describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]


def _launch_template_data(ctx, group) -> dict:
    spec = group.get("LaunchTemplate") or (group.get("MixedInstancesPolicy") or {}).get("LaunchTemplate", {}).get("LaunchTemplateSpecification")
    if not spec:
        raise LabError(f"Auto Scaling group {group['AutoScalingGroupName']} has no launch template.")
    args = {"LaunchTemplateId": spec["LaunchTemplateId"]} if spec.get("LaunchTemplateId") else {"LaunchTemplateName": spec["LaunchTemplateName"]}
    versions = ctx.aws("ec2").describe_launch_template_versions(**args)["LaunchTemplateVersions"]
    return max(versions, key=lambda v: v["VersionNumber"])["LaunchTemplateData"]


def _rules(ctx, group_ids: list[str]) -> dict[str, list[dict]]:
    if not group_ids:
        return {}
    groups = ctx.aws("ec2").describe_security_groups(GroupIds=group_ids)["SecurityGroups"]
    return {g["GroupId"]: g.get("IpPermissions", []) for g in groups}


def _describe_rule(rule: dict) -> str:
    ports = "all ports" if rule.get("IpProtocol") == "-1" else f"{rule.get('FromPort')}-{rule.get('ToPort')}"
    sources = [r["CidrIp"] for r in rule.get("IpRanges", [])] + [r["CidrIpv6"] for r in rule.get("Ipv6Ranges", [])]
    sources += [p["GroupId"] for p in rule.get("UserIdGroupPairs", [])]
    return f"{ports} from {', '.join(sources) or 'nowhere'}"


def _only_from(rules: list[dict], port: int, sources: set[str]) -> str | None:
    """None when every rule opens exactly `port` to one of the `sources` groups (and one does); else the problem."""
    if not rules:
        return f"no ingress rule (expected {port} from {', '.join(sorted(sources))})"
    allowed = False
    for rule in rules:
        cidrs = [r["CidrIp"] for r in rule.get("IpRanges", [])] + [r["CidrIpv6"] for r in rule.get("Ipv6Ranges", [])]
        groups = {p["GroupId"] for p in rule.get("UserIdGroupPairs", [])}
        if cidrs:
            return f"rule {_describe_rule(rule)} opens it to addresses, not to the tier in front"
        if rule.get("IpProtocol") == "-1" or (rule.get("FromPort"), rule.get("ToPort")) != (port, port):
            return f"rule {_describe_rule(rule)} is wider than port {port}"
        if groups - sources:
            return f"rule {_describe_rule(rule)} admits a group that is not the tier in front"
        allowed = allowed or bool(groups & sources)
    return None if allowed else f"no rule allows {port} from {', '.join(sorted(sources))}"


def _http(url: str, method: str = "GET", body: dict | None = None, timeout: float = 10,
          headers: dict | None = None) -> tuple[int, dict, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {**({"Content-Type": "application/json"} if data else {}), **(headers or {})}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def _site(ctx) -> str:
    return f"http://{_load_balancer(ctx)['DNSName']}"


def _sql(ctx):
    """A connection to the real database the app writes to now (the kit's administrator role): the stack's DB instance,
    or, after lab 3's failover, the instance /securecart/db/writer-endpoint names (the old primary is stale then)."""
    writer = topology.topology(ctx.endpoint_url).writer
    if writer is not None:
        return writer.connect()
    db = _database(ctx)
    endpoint = db.get("Endpoint") or {}
    return psycopg.connect(host=endpoint.get("Address"), port=endpoint.get("Port"), dbname=db.get("DBName") or db["DBInstanceIdentifier"],
                           user=config.RDS_SUPERUSER, password=Settings.from_env().superpassword, connect_timeout=5, autocommit=True)


# --- structure ------------------------------------------------------------------------------------------------

@check("network-tiers", "Public and private subnets in two Availability Zones", points=10,
       hint="Add two public subnets (route 0.0.0.0/0 to the internet gateway) and two private subnets (no such route), "
            "one of each per Availability Zone.",
       more="The load balancer lives in public subnets; app instances and the database live in private subnets that have "
            "no route from the internet. Two AZs let the site survive losing a data center.",
       needs={"cloudformation", "ec2"})
def network_tiers(ctx):
    subnets = _subnets(ctx)
    public = {s["az"] for s in subnets.values() if s["public"]}
    private = {s["az"] for s in subnets.values() if not s["public"]}
    if len(public) < 2 or len(private) < 2:
        return failed("The VPC needs public and private subnets in at least two Availability Zones.",
                      expected="public in 2+ AZs, private in 2+ AZs",
                      actual=f"public in {sorted(public) or 'none'}, private in {sorted(private) or 'none'}")
    return passed(f"public subnets in {sorted(public)}, private in {sorted(private)}")


@check("security-group-chain", "Security groups chain ALB -> app -> database", points=15,
       hint="Let each tier be reached only by the tier in front of it: the internet reaches the ALB, the ALB the app, "
            "the app the database. Chain the groups by reference, not by address ranges.",
       more="Chaining groups by reference means only the tier in front can reach each tier, whatever its addresses. "
            "ALB group: 80 from 0.0.0.0/0. App group: 8080 only from the ALB group (SourceSecurityGroupId). "
            "Database group: 5432 only from the app group. No CIDR ranges on the app or database groups.",
       needs={"cloudformation", "ec2", "elbv2", "autoscaling", "rds"})
def security_group_chain(ctx):
    alb_groups = set(_load_balancer(ctx).get("SecurityGroups") or [])
    app_groups = set(_launch_template_data(ctx, _group(ctx)).get("SecurityGroupIds") or [])
    db_groups = {g["VpcSecurityGroupId"] for g in _database(ctx).get("VpcSecurityGroups", [])}
    for tier, groups in (("load balancer", alb_groups), ("app instances' launch template", app_groups), ("database", db_groups)):
        if not groups:
            return failed(f"The {tier} has no security group.", expected="a security group per tier", actual="none")
    alb_rules = [r for rules in _rules(ctx, sorted(alb_groups)).values() for r in rules]
    if not any(set(c["CidrIp"] for c in r.get("IpRanges", [])) & ANYWHERE and r.get("FromPort") in (80, 443) for r in alb_rules):
        return failed("The load balancer's group does not accept HTTP from the internet.",
                      expected="80 from 0.0.0.0/0", actual="; ".join(map(_describe_rule, alb_rules)) or "no rules")
    for tier, groups, port, sources in (("app", app_groups, APP_PORT, alb_groups), ("database", db_groups, DB_PORT, app_groups)):
        for group_id, rules in _rules(ctx, sorted(groups)).items():
            problem = _only_from(rules, port, sources)
            if problem:
                return failed(f"The {tier} group {group_id}: {problem}.",
                              expected=f"only {port} from {', '.join(sorted(sources))}",
                              actual="; ".join(map(_describe_rule, rules)) or "no rules")
    return passed("internet -> ALB:80 -> app:8080 -> database:5432")


@check("database-private", "The database is private: not public, in private subnets, behind its group", points=10,
       hint="Keep the database off the internet: not publicly accessible, only in private subnets, and behind the "
            "database security group.",
       more="Set PubliclyAccessible: false, give the DB subnet group only the private subnets, and set VPCSecurityGroups "
            "to the database group.",
       needs={"cloudformation", "ec2", "rds"})
def database_private(ctx):
    db = _database(ctx)
    if db.get("Engine") != "postgres":
        return failed("The DB instance is not PostgreSQL.", expected="postgres", actual=db.get("Engine"))
    if db.get("PubliclyAccessible"):
        return failed("The database is publicly accessible.", expected="PubliclyAccessible: false", actual="true")
    subnets = _subnets(ctx)
    group_subnets = [s["SubnetIdentifier"] for s in (db.get("DBSubnetGroup") or {}).get("Subnets", [])]
    if not group_subnets:
        return failed("The database has no DB subnet group in the VPC.", expected="a DB subnet group of private subnets", actual="none")
    public = [s for s in group_subnets if subnets.get(s, {}).get("public", s not in subnets)]
    if public:
        return failed("The DB subnet group includes subnets that are public or outside the VPC.",
                      expected="private subnets only", actual=", ".join(public))
    own_groups = set(_resources(ctx).get("AWS::EC2::SecurityGroup") or [])
    db_groups = {g["VpcSecurityGroupId"] for g in db.get("VpcSecurityGroups", [])}
    if not db_groups & own_groups:
        return failed("The database does not use a security group from the stack (it falls back to the VPC default).",
                      expected="VPCSecurityGroups: [the database group]", actual=", ".join(sorted(db_groups)) or "none")
    return passed(f"{db['DBInstanceIdentifier']} in {len(group_subnets)} private subnets")


@check("database-resilient", "The database is encrypted, Multi-AZ and backed up for 7 days", points=10,
       hint="Encrypt the database's storage, give it a standby in a second Availability Zone, and keep a week of "
            "backups.",
       more="Multi-AZ keeps a synchronous standby in another AZ and fails over to it; backups allow point-in-time "
            "restore. Neither scales reads: that is what read replicas are for (lab 3). Set StorageEncrypted: true, "
            "MultiAZ: true, BackupRetentionPeriod: 7 (or more), and give the DB subnet group subnets in two AZs.",
       needs={"cloudformation", "ec2", "rds"})
def database_resilient(ctx):
    db = _database(ctx)
    problems = []
    if not db.get("StorageEncrypted"):
        problems.append("storage not encrypted")
    if not db.get("MultiAZ"):
        problems.append("not Multi-AZ")
    if int(db.get("BackupRetentionPeriod") or 0) < 7:
        problems.append(f"backups kept {db.get('BackupRetentionPeriod') or 0} days")
    zones = {s["SubnetAvailabilityZone"]["Name"] for s in (db.get("DBSubnetGroup") or {}).get("Subnets", [])}
    if len(zones) < 2:
        problems.append(f"DB subnet group in {len(zones)} AZ")
    if problems:
        return failed("The database is not resilient: " + ", ".join(problems) + ".",
                      expected="encrypted, Multi-AZ, backups >= 7 days, subnets in 2+ AZs", actual=", ".join(problems))
    standby = f" (standby in {db['SecondaryAvailabilityZone']})" if db.get("SecondaryAvailabilityZone") else ""
    return passed(f"encrypted, Multi-AZ{standby}, backups {db['BackupRetentionPeriod']} days")


@check("app-tier-scaling", "An Auto Scaling group of 2+ app instances over private subnets, behind a target group", points=15,
       hint="Run at least two app instances from a launch template in an Auto Scaling group over the private "
            "subnets, registered in a target group that checks /health.",
       more="MinSize and DesiredCapacity at least 2, VPCZoneIdentifier = the two private subnets, TargetGroupARNs = the "
            "target group (HealthCheckPath /health), and a launch template whose user data exports DB_HOST and runs "
            "python3 -m securecart_lab.app.",
       needs={"cloudformation", "ec2", "elbv2", "autoscaling"})
def app_tier_scaling(ctx):
    group = _group(ctx)
    name = group["AutoScalingGroupName"]
    if group["MinSize"] < 2 or group["DesiredCapacity"] < 2:
        return failed(f"Group {name} can run a single instance: one failure takes the site down.",
                      expected="MinSize >= 2, DesiredCapacity >= 2", actual=f"MinSize {group['MinSize']}, DesiredCapacity {group['DesiredCapacity']}")
    subnets = _subnets(ctx)
    chosen = [s for s in (group.get("VPCZoneIdentifier") or "").split(",") if s]
    if any(subnets.get(s, {"public": True})["public"] for s in chosen):
        return failed(f"Group {name} launches instances into public subnets.", expected="private subnets only", actual=", ".join(chosen) or "none")
    zones = {subnets[s]["az"] for s in chosen}
    if len(zones) < 2:
        return failed(f"Group {name} spans {len(zones)} Availability Zone.", expected="subnets in 2+ AZs", actual=sorted(zones))
    if not group.get("TargetGroupARNs"):
        return failed(f"Group {name} is not attached to a target group.", expected="TargetGroupARNs", actual="none")
    elbv2 = ctx.aws("elbv2")
    tgs = elbv2.describe_target_groups(TargetGroupArns=group["TargetGroupARNs"])["TargetGroups"]
    paths = {tg.get("HealthCheckPath") for tg in tgs}
    if "/health" not in paths:
        return failed("The target group does not check the app's /health endpoint.", expected="HealthCheckPath: /health", actual=sorted(map(str, paths)))
    launch = userdata.parse(userdata.decode(_launch_template_data(ctx, group).get("UserData")))
    if launch is None or not launch.env.get("DB_HOST"):
        return failed("The launch template's user data does not start the app with the database endpoint.",
                      expected="export DB_HOST=... then python3 -m securecart_lab.app",
                      actual="no app command" if launch is None else "no DB_HOST")
    return passed(f"{name}: {group['DesiredCapacity']} instances over {len(zones)} AZs")


@check("load-balancer", "An internet-facing ALB in the public subnets forwards HTTP to the target group", points=10,
       hint="Put an internet-facing Application Load Balancer in the public subnets, listening for HTTP and "
            "forwarding to the app's target group.",
       more="Type application, Scheme internet-facing, Subnets = the two public subnets, and a Listener on port 80 "
            "(HTTP) whose default action forwards to the app's target group.",
       needs={"cloudformation", "ec2", "elbv2", "autoscaling"})
def load_balancer(ctx):
    lb = _load_balancer(ctx)
    if lb.get("Scheme") != "internet-facing" or lb.get("Type", "application") != "application":
        return failed("The load balancer is not an internet-facing Application Load Balancer.",
                      expected="application, internet-facing", actual=f"{lb.get('Type')}, {lb.get('Scheme')}")
    subnets = _subnets(ctx)
    chosen = [z["SubnetId"] for z in lb.get("AvailabilityZones", [])]
    private = [s for s in chosen if not subnets.get(s, {}).get("public")]
    if private or len({subnets[s]["az"] for s in chosen}) < 2:
        return failed("The load balancer must be in public subnets in two AZs.", expected="2 public subnets in 2 AZs",
                      actual=", ".join(f"{s} ({'public' if subnets.get(s, {}).get('public') else 'private'})" for s in chosen))
    group_tgs = set(_group(ctx).get("TargetGroupARNs") or [])
    for listener in ctx.aws("elbv2").describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]:
        for action in listener.get("DefaultActions", []):
            targets = {action.get("TargetGroupArn")} | {t["TargetGroupArn"] for t in (action.get("ForwardConfig") or {}).get("TargetGroups", [])}
            if listener.get("Protocol") == "HTTP" and action.get("Type") == "forward" and targets & group_tgs:
                return passed(f"HTTP:{listener['Port']} -> the app's target group")
    return failed("No HTTP listener forwards to the Auto Scaling group's target group.",
                  expected="Listener HTTP:80, forward to the target group", actual="none")


# --- behaviour ---------------------------------------------------------------------------------------------------

def _no_healthy_target(ctx, what: str):
    """A failed outcome naming the real cause when the load balancer has no healthy target, else None."""
    # Replacements of failed instances are `initial` for a moment: report the health checks' verdict on them.
    health = ctx.lab.provisioner().site_health(ctx, settle=SETTLE_SECONDS)
    if health is None or health.healthy:
        return None
    return failed(f"{what}: the load balancer has no healthy target to send it to.",
                  expected="healthy targets (GET /health answers 200)", actual=health.explain())


def _json_body(body: bytes):
    try:
        return json.loads(body)
    except ValueError:
        return None

@check("site-serves-products", "GET /api/products through the ALB returns the products in PostgreSQL", points=10,
       hint="Deploy, then open the site URL that deploy prints. If it answers 503, no target is healthy: read the instance "
            "logs (securecart-lab logs emulator) and check the user data's DB_* variables match the database.",
       needs={"cloudformation", "elbv2", "rds"})
def site_serves_products(ctx):
    url = f"{_site(ctx)}/api/products?limit=200"
    status, headers, body = _http(url)
    if status != 200:
        return (_no_healthy_target(ctx, f"GET {url} answered {status}")
                or failed(f"GET {url} answered {status}.", expected=200, actual=f"{status} {body[:120]!r}"))
    products = (_json_body(body) or {}).get("products")
    if not isinstance(products, list):
        return failed(f"GET {url} did not answer the app's JSON.", expected='{"products": [...]}', actual=body[:120])
    with _sql(ctx) as conn:
        stored = dict(conn.execute("SELECT sku, name FROM products").fetchall())
    wrong = [p["sku"] for p in products if stored.get(p["sku"]) != p["name"]]
    if not products or wrong:
        return failed("The products served are not those in the stack's database.",
                      expected=f"{len(stored)} products from PostgreSQL", actual=f"{len(products)} served, {len(wrong)} unknown")
    return passed(f"{len(products)} products, served by {headers.get('X-SecureCart-Instance')}")


@check("orders-stored", "POST /api/orders through the ALB is stored in PostgreSQL", points=10,
       hint="The app writes orders to the database named by DB_NAME at DB_HOST:DB_PORT: make the user data point at the "
            "stack's DB instance (!GetAtt Database.Endpoint.Address and Endpoint.Port).",
       needs={"cloudformation", "elbv2", "rds"})
def orders_stored(ctx):
    site = _site(ctx)
    status, _, body = _http(f"{site}/api/products?limit=1")
    products = (_json_body(body) or {}).get("products") if status == 200 else None
    if not products:
        return (_no_healthy_target(ctx, "The check could not read a product to order")
                or failed("The check could not read a product to order.", expected="200 with a product",
                          actual=f"{status} {body[:120]!r}"))
    sku = products[0]["sku"]
    email = f"{ctx.unique('lab02-check')}@example.com"
    status, _, body = _http(f"{site}/api/orders", "POST", {"customerEmail": email, "items": [{"sku": sku, "quantity": 2}],
                                                          "cardToken": "tok_visa_ok"})
    if status != 201 or not isinstance(_json_body(body), dict) or "orderId" not in _json_body(body):
        return (_no_healthy_target(ctx, f"POST /api/orders answered {status}")
                or failed("The order was not accepted.", expected=201, actual=f"{status} {body[:160]!r}"))
    order_id = _json_body(body)["orderId"]
    with _sql(ctx) as conn:
        row = conn.execute("SELECT o.customer_email, l.sku, l.quantity FROM orders o JOIN order_lines l ON l.order_id = o.id "
                           "WHERE o.id = %s", (order_id,)).fetchone()
    if row != (email, sku, 2):
        return failed(f"Order {order_id} is not in the stack's database.", expected=(email, sku, 2), actual=row)
    return passed(f"order {order_id} is in PostgreSQL")


def _website_bucket(ctx) -> str:
    buckets = _resources(ctx).get("AWS::S3::Bucket") or []
    if not buckets:
        raise LabError("The stack has no S3 bucket for the storefront (AWS::S3::Bucket).")
    s3 = ctx.aws("s3")
    for bucket in buckets:
        try:
            s3.get_bucket_website(Bucket=bucket)
        except Exception:
            continue
        return bucket
    raise LabError(f"Bucket {', '.join(buckets)} has no static website hosting.")


def _publicly_readable(s3, bucket: str) -> bool:
    """A bucket policy statement allows anonymous s3:GetObject on the bucket's objects."""
    try:
        policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    except ClientError:
        return False
    statements = policy.get("Statement") or []
    for st in statements if isinstance(statements, list) else [statements]:
        principal = st.get("Principal")
        actions = st.get("Action") if isinstance(st.get("Action"), list) else [st.get("Action")]
        resources = st.get("Resource") if isinstance(st.get("Resource"), list) else [st.get("Resource")]
        if (st.get("Effect") == "Allow" and principal in ("*", {"AWS": "*"})
                and any(a in ("s3:GetObject", "s3:Get*", "s3:*", "*") for a in actions)
                and any(r in (f"arn:aws:s3:::{bucket}/*", "*") for r in resources)):
            return True
    return False


@check("storefront-on-s3", "The storefront is served by an S3 website bucket and calls the API through the ALB", points=10,
       hint="Add an AWS::S3::Bucket with WebsiteConfiguration (IndexDocument: index.html) that anyone may read "
            "(an AWS::S3::BucketPolicy), then run \"securecart-lab deploy 2\": it uploads the storefront and a "
            "config.js naming the load balancer.",
       more="The presentation tier's static files need no server: S3 website hosting serves them. Browsers are "
            "anonymous, so the bucket policy must allow s3:GetObject on the bucket's objects to Principal \"*\" (and "
            "the bucket's PublicAccessBlockConfiguration must not block public policies). The page's script then "
            "calls the API on the load balancer, another origin, which the app allows with CORS headers "
            "(Access-Control-Allow-Origin).",
       needs={"cloudformation", "s3", "elbv2"})
def storefront_on_s3(ctx):
    down = _no_healthy_target(ctx, "The storefront's page calls the API through the load balancer")
    if down:
        return down
    bucket = _website_bucket(ctx)
    url = ctx.lab.provisioner().storefront_url(ctx, bucket)
    status, headers, body = _http(url)
    if status != 200 or not headers.get("Content-Type", "").startswith("text/html") or b'data-testid="place-order"' not in body:
        return failed(f"{url} does not serve the storefront page.", expected="200 text/html, the storefront",
                      actual=f"{status} {headers.get('Content-Type')} {body[:80]!r}")
    if not _publicly_readable(ctx.aws("s3"), bucket):
        return failed(f"Bucket {bucket} has no policy letting anyone read its objects: on AWS, browsers get 403.",
                      expected=f'Allow s3:GetObject to Principal "*" on arn:aws:s3:::{bucket}/*', actual="no such statement")
    site = _site(ctx)
    _, _, config_js = _http(f"{url}config.js")
    if site.encode() not in config_js:
        return failed("The storefront's config.js does not point at the load balancer (run \"securecart-lab deploy 2\").",
                      expected=f'window.SECURECART_API = "{site}"', actual=config_js[:120].decode(errors="replace"))
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(url))
    for method, path, extra in (("OPTIONS", "/api/orders", {"Access-Control-Request-Method": "POST",
                                                            "Access-Control-Request-Headers": "content-type"}),
                                ("GET", "/api/products?limit=1", {})):
        status, headers, _ = _http(f"{site}{path}", method, headers={"Origin": origin, **extra})
        allowed = headers.get("Access-Control-Allow-Origin")
        if status != 200 or allowed not in ("*", origin):
            return failed(f"The API behind the load balancer does not allow {method} {path} from the storefront's origin.",
                          expected=f"200 with Access-Control-Allow-Origin: * or {origin}",
                          actual=f"{status}, Access-Control-Allow-Origin: {allowed or 'none'}")
    return passed(f"{url} serves the storefront; its API calls go to {site}")


def _instances_serving(site: str, requests: int = 20) -> list[str]:
    served = []
    for _ in range(requests):
        status, headers, _ = _http(f"{site}/health", timeout=5)
        if status == 200:
            served.append(headers.get("X-SecureCart-Instance"))
    return served


@check("load-balanced", "Requests are spread over at least two instances", points=10,
       hint="Give the Auto Scaling group DesiredCapacity 2 or more and make sure every instance passes the /health check "
            "(aws elbv2 describe-target-health).",
       needs={"cloudformation", "elbv2", "autoscaling"})
def load_balanced(ctx):
    served = _instances_serving(_site(ctx))
    members = {i["InstanceId"] for i in _group(ctx)["Instances"]}
    distinct = set(served)
    if len(distinct & members) < 2:
        down = None if served else _no_healthy_target(ctx, "No request through the load balancer got an answer")
        return down or failed("The load balancer does not spread requests over two or more of the group's instances.",
                      expected=">= 2 instances", actual=f"{len(served)} of 20 answered, by {sorted(map(str, distinct)) or 'none'}")
    return passed(f"20 requests served by {len(distinct)} instances")


@check("self-healing", "After an instance is terminated the site keeps serving and the group is back at capacity", points=10,
       hint="Attach the Auto Scaling group to the target group, keep at least 2 instances, and use health checks so the "
            "load balancer stops sending traffic to a lost instance.",
       more=f"The check terminates one of the group's instances, then requests the site until the group has its desired "
            f"capacity of healthy instances again ({RECOVERY_SECONDS} s at most). Every request must succeed.",
       needs={"cloudformation", "ec2", "elbv2", "autoscaling"})
def self_healing(ctx):
    group = _group(ctx)
    site = _site(ctx)
    desired = group["DesiredCapacity"]
    in_service = [i["InstanceId"] for i in group["Instances"] if i["LifecycleState"] == "InService"]
    if len(in_service) < 2:
        return failed("The group needs two instances in service to lose one.", expected=">= 2", actual=len(in_service))
    victim = in_service[0]
    ctx.aws("ec2").terminate_instances(InstanceIds=[victim])
    started = time.monotonic()
    errors, requests = 0, 0
    elbv2 = ctx.aws("elbv2")
    while time.monotonic() - started < RECOVERY_SECONDS:
        status, _, _ = _http(f"{site}/api/products?limit=1", timeout=5)
        requests += 1
        errors += status != 200
        now = _group(ctx)
        members = {i["InstanceId"] for i in now["Instances"] if i["LifecycleState"] == "InService"}
        healthy = set()
        for arn in now.get("TargetGroupARNs") or []:
            healthy |= {d["Target"]["Id"] for d in elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
                        if d["TargetHealth"]["State"] == "healthy"}
        if victim not in members and len(members & healthy) >= desired:
            break
        time.sleep(0.2)
    else:
        return failed(f"The group was not back at {desired} healthy instances {RECOVERY_SECONDS} s after losing {victim}.",
                      expected=f"{desired} healthy", actual=f"{len(members & healthy)} healthy")
    seconds = time.monotonic() - started
    if errors:
        return failed(f"{errors} of {requests} requests failed while the group recovered.", expected="0 failures", actual=errors)
    return passed(f"back at {desired} healthy instances {seconds:.1f} s after terminating {victim}; {requests} requests, 0 failed")
