"""Lab 3 checks: the replica is read through the RDS API, then observed on the real PostgreSQL servers.

Which server did what is measured on the servers, not taken from the app's X-SecureCart-DB header:
pg_stat_replication on the writer, pg_is_in_recovery on the replica, and pg_stat_activity, which keeps each app
connection's last statement and when it finished. (pg_stat_database counters would do too, but a busy backend
flushes them only every few seconds.) The checks write only their own data: a probe row in a database of their
own (securecart_lab_probe) and orders with their own ids.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import psycopg
from botocore.exceptions import ClientError

from securecart_lab.postgres import topology as replicas
from securecart_lab.app.config import READER_PARAMETER, WRITER_PARAMETER
from securecart_lab.checking import check, failed, passed
from securecart_lab.errors import LabError
from securecart_lab.labs.registry import get_lab

RDS = {"rds", "ssm", "cloudformation"}
SITE = RDS | {"elbv2", "ec2"}
PROBE_DB = get_lab(3).module("outage.py").PROBE_DB
LAG_LIMIT = 1.0
SEARCHES = 12
# Only the product search ends like this (orders read products too, by SKU).
SEARCH_SQL = "%order by p.name, p.sku%"


# --- helpers -----------------------------------------------------------------------------------------------------

def _topology(ctx) -> replicas.Topology:
    if "topology" not in ctx.cache:
        ctx.cache["topology"] = replicas.topology(ctx.endpoint_url)
    return ctx.cache["topology"]


def _replica(ctx) -> tuple[replicas.DbInstance, replicas.DbInstance]:
    """(primary, its first available read replica), or LabError saying what is missing. The primary is the app's
    writer, or that writer's source when the writer is (wrongly) a read replica itself."""
    topo = _topology(ctx)
    writer = topo.require_writer()
    if writer.source and writer.source in topo.instances:
        writer = topo.instances[writer.source]
    available = [r for r in topo.instances.values() if r.source == writer.id and r.status == "available"]
    if not available:
        others = ", ".join(f"{i.id} ({i.status})" for i in topo.replicas) or "none"
        if topo.lab_database is not None and writer.id != topo.lab_database.id:
            # After a failover replica.yaml no longer decides: deploy 3 refuses to re-create the stack holding the writer.
            raise LabError(f"Expected an available read replica of {writer.id} (the writer since the failover) through the "
                           f"RDS API, found {others}.",
                           f"Give the new writer a replica of its own: aws rds create-db-instance-read-replica "
                           f"--db-instance-identifier {writer.id}2 --source-db-instance-identifier {writer.id}, then put its "
                           f"endpoint in {READER_PARAMETER} (README, step 3). To start lab 3 again instead: "
                           "securecart-lab reset 3 --environment.")
        raise LabError(f"Expected an available read replica of {writer.id} (the writer) through the RDS API, found {others}.",
                       "Add an AWS::RDS::DBInstance with SourceDBInstanceIdentifier to replica.yaml and deploy 3.")
    return writer, available[0]


def _site(ctx) -> str:
    lab2 = get_lab(2)
    url = lab2.provisioner().site_url(ctx.lab_context(lab2))
    if url is None:
        raise LabError("Expected lab 2's load balancer (stack securecart-lab02), found none.", replicas.NO_DATABASE_HINT)
    return url


def _http(method: str, url: str, body: dict | None = None) -> tuple[int, dict, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), _json(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), _json(exc.read())


def _json(raw: bytes) -> dict:
    try:
        value = json.loads(raw or b"{}")
    except ValueError:
        return {"message": raw[:200].decode(errors="replace").strip()}
    return value if isinstance(value, dict) else {"value": value}


def _place_order(ctx, url: str, writer: replicas.DbInstance) -> tuple[int, dict]:
    with writer.connect() as conn:
        row = conn.execute("SELECT p.sku FROM products p JOIN inventory i ON i.sku = p.sku"
                           " WHERE i.stock > 10 ORDER BY i.stock DESC LIMIT 1").fetchone()
    if row is None:
        raise LabError(f"No product in stock in {writer.id}'s database to order.", "Re-deploy lab 2 to reload the seed.")
    order = {"customerEmail": f"{ctx.unique('check')}@example.com", "items": [{"sku": row[0], "quantity": 1}],
             "cardToken": "tok_visa_ok"}
    status, _, body = _http("POST", f"{url}/api/orders", order)
    return status, body


def _order_on(instance: replicas.DbInstance, order_ids: list[str]) -> set[str]:
    with instance.connect() as conn:
        return {r[0] for r in conn.execute("SELECT id FROM orders WHERE id = ANY(%s)", (order_ids,))}


def _searches_since(instance: replicas.DbInstance, since) -> list[str]:
    """The app connections on `instance` whose last statement, finished after `since`, was a product search."""
    with instance.connect() as conn:
        rows = conn.execute(
            "SELECT application_name FROM pg_stat_activity WHERE datname = %s AND application_name LIKE 'securecart-app%%'"
            " AND state = 'idle' AND state_change >= %s AND query ILIKE %s",
            (instance.dbname, since, SEARCH_SQL),
        ).fetchall()
    return [r[0].removeprefix("securecart-app ") for r in rows]


def _writable(instance: replicas.DbInstance) -> str | None:
    """None when the server accepts a write (made in a transaction that is rolled back), else its refusal."""
    with instance.connect() as conn:
        try:
            with conn.transaction(force_rollback=True):
                conn.execute("CREATE TABLE securecart_lab_write_probe (id integer)")
        except psycopg.errors.ReadOnlySqlTransaction as exc:
            return str(exc).strip()
    return None


# --- step 1: a real standby ----------------------------------------------------------------------------------------

@check("replica-streaming", "A read replica exists through the RDS API and is a real streaming standby", points=15,
       hint="Add a read replica of the writer (lab 2's database) to replica.yaml, then securecart-lab deploy 3.",
       more="describe_db_instances must list a replica whose ReadReplicaSourceDBInstanceIdentifier is the writer. The "
            "check then asks the replica's server whether it is in recovery and who it streams from "
            "(pg_stat_wal_receiver), and the writer's server whether that standby is streaming (pg_stat_replication). "
            "In replica.yaml: an AWS::RDS::DBInstance with SourceDBInstanceIdentifier: !Ref SourceDBInstanceIdentifier.",
       needs=RDS)
def replica_streaming(ctx):
    writer, replica = _replica(ctx)
    with replica.connect() as conn:
        in_recovery = conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]
        receiver = conn.execute("SELECT status, slot_name, sender_port FROM pg_stat_wal_receiver").fetchone()
    if not in_recovery:
        return failed(f"{replica.id} is not in recovery: it is a standalone server, not a standby",
                      expected="pg_is_in_recovery() = true", actual="false")
    if receiver is None or receiver[2] != writer.port:
        return failed(f"{replica.id} does not stream from the writer {writer.id}",
                      expected=f"a WAL receiver connected to port {writer.port}", actual=receiver or "no WAL receiver")
    with writer.connect() as conn:
        state = conn.execute("SELECT state FROM pg_stat_replication WHERE application_name = %s", (receiver[1],)).fetchone()
    if state is None or state[0] != "streaming":
        return failed(f"The writer {writer.id} does not see {replica.id} streaming",
                      expected="pg_stat_replication state = streaming", actual=state[0] if state else "no row")
    return passed(f"{replica.id} ({replica.endpoint}) is in recovery and streaming from {writer.id} ({writer.endpoint})")


@check("replica-lag", "A row written on the primary is readable on the replica within 1 s", points=10,
       hint="The replica must be streaming (see replica-streaming). Lag grows when the replica is overloaded or its "
            "source is far away; ReplicaLag in CloudWatch (AWS/RDS) shows it over time.",
       more="The check inserts a row in its own database (securecart_lab_probe) on the writer, then polls the replica "
            "until the row is there, and reports the measured lag.",
       needs=RDS)
def replica_lag(ctx):
    writer, replica = _replica(ctx)
    with writer.connect("postgres") as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (PROBE_DB,)).fetchone():
            conn.execute(f"CREATE DATABASE {PROBE_DB}")
    with writer.connect(PROBE_DB) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS replication_probe (id text PRIMARY KEY, written_at timestamptz DEFAULT now())")
    deadline = time.monotonic() + 5
    while True:  # a freshly created probe database takes a moment to reach the replica
        try:
            reader = replica.connect(PROBE_DB)
            reader.execute("SELECT 1 FROM replication_probe LIMIT 1")
            break
        except (LabError, psycopg.Error):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    probe = ctx.unique("probe")
    with reader:
        with writer.connect(PROBE_DB) as conn:
            conn.execute("INSERT INTO replication_probe (id) VALUES (%s)", (probe,))
        written = time.perf_counter()
        seen = None
        while time.perf_counter() - written < LAG_LIMIT:
            if reader.execute("SELECT 1 FROM replication_probe WHERE id = %s", (probe,)).fetchone():
                seen = time.perf_counter() - written
                break
            time.sleep(0.005)
    with writer.connect(PROBE_DB) as conn:
        conn.execute("DELETE FROM replication_probe WHERE id = %s", (probe,))
    if seen is None:
        return failed(f"The row written on {writer.id} was not on {replica.id} after {LAG_LIMIT:.0f} s",
                      expected=f"visible within {LAG_LIMIT:.0f} s", actual="not visible")
    return passed(f"Visible on {replica.id} {seen * 1000:.1f} ms after the commit on {writer.id}", actual=f"{seen * 1000:.1f} ms")


@check("replica-read-only", "A write to the replica is refused", points=10,
       hint="A read replica is read-only: if this fails, the instance is not (or no longer) a replica. Deploy replica.yaml "
            "again, or after a failover create a new replica of the promoted instance.",
       more="The check tries CREATE TABLE on the replica inside a transaction that is always rolled back.",
       needs=RDS)
def replica_read_only(ctx):
    _, replica = _replica(ctx)
    refusal = _writable(replica)
    if refusal is None:
        return failed(f"{replica.id} accepted a write (rolled back)", expected="read-only", actual="writable")
    return passed(f"{replica.id} refused it: {refusal}")


# --- step 2: read routing ------------------------------------------------------------------------------------------

@check("reads-on-replica", "Product searches through the load balancer run on the replica", points=15,
       hint=f"Tell the app tier where the replica is: the app reads its reader endpoint from the SSM parameter "
            f"{READER_PARAMETER}.",
       more=f"The check sends {SEARCHES} product searches through the ALB, then asks both servers which app connections "
            "last ran a product search since (pg_stat_activity). Add an AWS::SSM::Parameter "
            f"{READER_PARAMETER} whose value is the replica's Endpoint.Address:Endpoint.Port to replica.yaml and "
            "deploy 3; the app instances pick it up within 5 s.",
       needs=SITE)
def reads_on_replica(ctx):
    writer, replica = _replica(ctx)
    url = _site(ctx)
    with replica.connect() as conn:
        since = conn.execute("SELECT clock_timestamp()").fetchone()[0]
    routes = []
    for n in range(SEARCHES):
        status, headers, _ = _http("GET", f"{url}/api/products?q=e&limit=5")
        if status != 200:
            return failed("A product search through the load balancer failed", expected="200", actual=status)
        routes.append(headers.get("X-SecureCart-DB", "?"))
    on_replica, on_writer = _searches_since(replica, since), _searches_since(writer, since)
    said = ", ".join(f"{routes.count(r)} {r}" for r in sorted(set(routes)))
    if on_writer or not on_replica:
        problem = _reader_parameter_problem(_topology(ctx).reader_parameter, replica)
        return failed(f"Searches ran on the writer {writer.id}, not only on the replica {replica.id} (the app said: {said})",
                      expected=f"app connections searching on {replica.id} only",
                      actual=f"{len(on_replica)} on {replica.id}, {len(on_writer)} on {writer.id}"
                             + (f"; {problem}" if problem else ""))
    instances = sorted(set(on_replica))
    return passed(f"{SEARCHES} searches: {len(on_replica)} app connections from {', '.join(instances)} searched on {replica.id}, "
                  f"none on {writer.id}", actual=said)


def _reader_parameter_problem(value: str | None, replica: replicas.DbInstance) -> str | None:
    """What is wrong with the reader parameter the learner set, seen from the replica it should name."""
    if value is None:
        return f"{READER_PARAMETER} is not set"
    if ":" not in value:
        return f"{READER_PARAMETER} is {value!r}: the value lacks :port (expected {replica.endpoint})"
    if value.strip() != replica.endpoint:
        return f"{READER_PARAMETER} is {value!r}, not the replica's endpoint {replica.endpoint}"
    return None


@check("writes-on-primary", "Orders through the load balancer are stored by the writer", points=10,
       hint=f"Orders must go to the primary: keep DB_HOST (or {WRITER_PARAMETER}, if you set it) on the writer, never on "
            "the replica, which refuses writes and offers no fallback.",
       more="The check places an order through the ALB and looks for it on the writer's server.",
       needs=SITE)
def writes_on_primary(ctx):
    writer, _ = _replica(ctx)
    app_writer = _topology(ctx).writer
    status, body = _place_order(ctx, _site(ctx), writer)
    if status != 201:
        why = f" ({WRITER_PARAMETER} names the read replica {app_writer.id})" if app_writer.source else ""
        return failed(f"The site refused an order{why}", expected="201 Created",
                      actual=f"{status} {body.get('error', '')}: {body.get('message', '')}".strip())
    if not _order_on(writer, [body["orderId"]]):
        return failed(f"Order {body['orderId']} was confirmed but is not in {writer.id}'s database",
                      expected=f"the order on {writer.id} ({writer.endpoint})", actual="missing")
    return passed(f"Order {body['orderId']} is stored on {writer.id} ({writer.endpoint})")


# --- step 3: Multi-AZ, then the failover drill ---------------------------------------------------------------------

FAILOVER_COMPLETED = "Multi-AZ instance failover completed"
FAILOVER_STARTED = "Multi-AZ instance failover started."
AZ_DOWN_HINT = "Run securecart-lab chaos az-down while lab 2's Multi-AZ securecart-db is the writer (README, step 3)."
REDO_HINT = "To do step 3 again in order: securecart-lab reset 3 --environment, deploy 3, then chaos az-down first."


@check("multi-az-failover", "When the writer's Availability Zone fails, Multi-AZ fails over behind the same endpoint "
       "and no order is lost", points=10,
       hint=AZ_DOWN_HINT + " Watch RDS fail over by itself (aws rds describe-events), then place an order on the site: "
            "the writer parameter stays as it is.",
       more="chaos az-down notes the writer (endpoint, AZ, standby AZ, the writer parameter) and every confirmed order, "
            "then crashes its primary server. The check wants RDS's failover events for that instance since, the same "
            "endpoint, the instance now in its former standby's AZ, every noted order still there, and the site storing "
            "an order on it after the failover without a change to the writer parameter: while it is the writer, the "
            "check places that order itself; after the primary-down drill it looks for one placed between the two drills.",
       needs=SITE)
def multi_az_failover(ctx):
    drill = get_lab(3).module("outage.py")
    environment = ctx.engine.environment_id()
    az, outage = drill.AzOutage.load(ctx.settings, environment), drill.Outage.load(ctx.settings, environment)
    topo = _topology(ctx)
    if az is None:
        if outage is not None:
            return failed(f"chaos primary-down was run on {outage.instance}, but chaos az-down was not before it",
                          expected="chaos az-down on the Multi-AZ writer, then the primary-down drill",
                          actual="primary-down only", hint=REDO_HINT)
        writer = topo.require_writer()
        if not writer.multi_az:
            return failed(f"The writer {writer.id} is not Multi-AZ: with its AZ down there is no standby to take over",
                          expected="MultiAZ: true", actual="MultiAZ: false",
                          hint="Lab 2's template asks for MultiAZ: true on the database (deploy 2), then chaos az-down.")
        return failed("The Multi-AZ drill has not been run", expected="securecart-lab chaos az-down", actual="no az-down yet")
    at = time.strftime("%H:%M:%S", time.localtime(az.at))
    rds = ctx.aws("rds")
    try:
        found = rds.describe_db_instances(DBInstanceIdentifier=az.instance)["DBInstances"][0]
    except ClientError:
        return failed(f"{az.instance}, whose AZ went down at {at}, no longer exists", expected=az.instance,
                      actual="no such DB instance", hint=REDO_HINT)
    if not found.get("MultiAZ"):
        return failed(f"{az.instance} is not Multi-AZ any more", expected="MultiAZ: true", actual="MultiAZ: false",
                      hint=REDO_HINT)
    events = rds.describe_events(SourceType="db-instance", SourceIdentifier=az.instance)["Events"]
    since = [event["Message"] for event in events[az.events_before:]]  # in the order RDS recorded them
    if FAILOVER_COMPLETED not in since:
        if found["DBInstanceStatus"] == "rebooting" or FAILOVER_STARTED in since:
            return failed(f"{az.instance} is still failing over", expected=f"the event {FAILOVER_COMPLETED!r}",
                          actual=found["DBInstanceStatus"],
                          hint=f"Wait a few seconds: aws rds describe-events --source-type db-instance "
                               f"--source-identifier {az.instance}")
        return failed(f"{az.instance} did not fail over after its AZ went down at {at}",
                      expected=f"the events {FAILOVER_STARTED!r} and {FAILOVER_COMPLETED!r}",
                      actual="; ".join(since) or "no event")
    endpoint = f"{found['Endpoint']['Address']}:{found['Endpoint']['Port']}"
    if endpoint != az.endpoint:
        return failed(f"{az.instance}'s endpoint changed with the failover", expected=az.endpoint, actual=endpoint)
    zone = found.get("AvailabilityZone")
    if az.standby_zone and zone != az.standby_zone:
        return failed(f"{az.instance} still runs in {zone}: its standby in {az.standby_zone} did not take over",
                      expected=f"AvailabilityZone {az.standby_zone}", actual=f"AvailabilityZone {zone}")
    moved = f"{az.instance} failed over at {at} from {az.zone} to its standby in {zone}, behind the same endpoint {endpoint}"
    parameter = az.writer_parameter or "not set"
    writer = topo.writer
    if writer is not None and writer.id == az.instance:
        if topo.writer_parameter != az.writer_parameter:
            return failed(f"{WRITER_PARAMETER} changed after the failover: a Multi-AZ failover keeps the endpoint, so "
                          "nothing needs to move", expected=parameter, actual=topo.writer_parameter or "not set",
                          hint=f"Put {WRITER_PARAMETER} back as it was ({parameter}).")
        lost = [o for o in az.orders if o not in _order_on(writer, az.orders)]
        if lost:
            return failed(f"{len(lost)} of the {len(az.orders)} orders confirmed before the AZ went down are missing",
                          expected="every order", actual=", ".join(lost[:5]) + (" ..." if len(lost) > 5 else ""))
        status, body = _place_order(ctx, _site(ctx), writer)
        if status != 201 or not _order_on(writer, [body["orderId"]]):
            return failed(f"The site did not take an order on {az.instance} after the failover",
                          expected="201, stored on the same instance",
                          actual=f"{status} {body.get('message', '')}".strip())
        return passed(f"{moved}: all {len(az.orders)} orders confirmed before are there, and the site stored new order "
                      f"{body['orderId']} on it ({WRITER_PARAMETER}: {parameter}, unchanged)")
    if outage is not None and outage.instance == az.instance:
        # The primary-down drill came next: it noted every order on the instance, which was still the writer.
        noted = set(outage.orders)
        lost = [o for o in az.orders if o not in noted]
        if lost:
            return failed(f"{len(lost)} of the {len(az.orders)} orders confirmed before the AZ went down were gone by "
                          "the primary-down drill", expected="every order",
                          actual=", ".join(lost[:5]) + (" ..." if len(lost) > 5 else ""))
        before = set(az.orders)
        later = [o for o in outage.orders if o not in before]  # stored after the AZ went down, so after the failover
        if not later:
            return failed(f"No order was stored on {az.instance} between its failover and chaos primary-down",
                          expected="an order through the site after chaos az-down, before chaos primary-down",
                          actual="none", hint="After chaos az-down, place an order on the site (README, step 3) "
                                              "before chaos primary-down. " + REDO_HINT)
        return passed(f"{moved}: all {len(az.orders)} orders confirmed before were there at the primary-down drill, "
                      f"and the site stored {len(later)} more on it after the failover (first: {later[0]}) with "
                      f"{WRITER_PARAMETER} unchanged")
    return failed(f"The writer is {writer.id if writer else 'unknown'}, not {az.instance}, though a Multi-AZ failover "
                  "keeps the endpoint", expected=f"{WRITER_PARAMETER}: {parameter}",
                  actual=topo.writer_parameter or "not set",
                  hint=f"Put {WRITER_PARAMETER} back as it was ({parameter}).")



@check("failover", "After the primary fails, the promoted replica takes orders and no confirmed order is lost", points=20,
       hint="Run the drill: securecart-lab chaos primary-down; aws rds promote-read-replica; put the promoted endpoint in "
            f"{WRITER_PARAMETER}; create a read replica of it and put that in {READER_PARAMETER} (README, step 3).",
       more="chaos primary-down notes every order confirmed at the moment of failure. The check wants the writer to be "
            "another instance than the one that failed, writable, the site to serve searches and take a new order on "
            "it, and every noted order to be there.",
       needs=SITE)
def failover(ctx):
    outage = get_lab(3).module("outage.py").Outage.load(ctx.settings, ctx.engine.environment_id())
    if outage is None:
        return failed("The failover drill has not been run", expected="securecart-lab chaos primary-down, then the failover",
                      actual="no primary-down yet")
    topo = _topology(ctx)
    writer = topo.require_writer()
    if writer.id == outage.instance:
        return failed(f"The writer is still {writer.id}, the instance that failed at {outage.at}",
                      expected=f"{WRITER_PARAMETER} on the promoted replica", actual=topo.writer_parameter or "not set")
    refusal = _writable(writer)
    if refusal is not None:
        return failed(f"The writer {writer.id} refuses writes: promote it (aws rds promote-read-replica)",
                      expected="writable", actual=refusal)
    url = _site(ctx)
    status, _, found = _http("GET", f"{url}/api/products?q=e&limit=5")
    if status != 200 or not found.get("products"):
        return failed("The site does not serve product searches after the failover", expected="200 with products",
                      actual=f"{status} {found.get('message', '')}".strip())
    status, body = _place_order(ctx, url, writer)
    if status != 201 or not _order_on(writer, [body["orderId"]]):
        return failed(f"The site did not take a new order on {writer.id}", expected="201, stored on the new writer",
                      actual=f"{status} {body.get('message', '')}".strip())
    kept = _order_on(writer, outage.orders) if outage.orders else set()
    lost = [o for o in outage.orders if o not in kept]
    if lost:
        return failed(f"{len(lost)} of the {len(outage.orders)} orders confirmed before the failure are missing on {writer.id}",
                      expected="every order", actual=", ".join(lost[:5]) + (" ..." if len(lost) > 5 else ""))
    return passed(f"{writer.id} took over from {outage.instance}: all {len(outage.orders)} orders confirmed before the "
                  f"failure are there, and new order {body['orderId']} was stored on it")
