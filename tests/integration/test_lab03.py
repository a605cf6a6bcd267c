"""Lab 3 on the real local engine: the starter fails, wrong configurations fail the check they should, the
reference solution (with its failover drill) passes every check. The module puts the session's engine back as
lab 2 left it: primary up, no writer parameter, no lab 3 stack, no replicas."""

from __future__ import annotations

import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from securecart_lab import envstate, postgres
from securecart_lab.postgres import topology as replicas
from securecart_lab.app.config import READER_PARAMETER, WRITER_PARAMETER
from securecart_lab.checking import FAIL, PASS
from securecart_lab.labs import service
from securecart_lab.labs.registry import get_lab
from securecart_lab.postgres.testing import remove_home

pytestmark = pytest.mark.integration

CHECKS = ["replica-streaming", "replica-lag", "replica-read-only", "reads-on-replica", "writes-on-primary",
          "multi-az-failover", "failover"]
APP_CACHE_SECONDS = 5.5  # the app instances re-read the SSM endpoints every 5 s


@pytest.fixture(scope="module")
def lab3(settings, engine, lab_ctx):
    began = time.perf_counter()
    service.start(settings, 3, with_prereqs=True)
    print(f"\nstart 3 --with-prereqs: {time.perf_counter() - began:.1f} s")
    ctx = lab_ctx(3)
    yield ctx
    _restore(settings, ctx)


def _restore(settings, ctx) -> None:
    """What reset 3 --environment does, without touching files: lab 2 as it was, nothing of lab 3's."""
    ctx.lab.module("outage.py").teardown(ctx)


@pytest.fixture
def folder():
    path = Path(tempfile.mkdtemp(prefix="lab03-", dir="/tmp"))
    yield path
    remove_home(path)


def results(settings) -> dict[str, object]:
    return {o.id: o for o in service.check(settings, 3).outcomes}


def statuses(settings) -> dict[str, str]:
    return {i: o.status for i, o in results(settings).items()}


def site(ctx) -> str:
    lab2 = get_lab(2)
    return lab2.provisioner().site_url(ctx.lab_context(lab2))


def wait_for_route(ctx, route: str, timeout: float = 10) -> None:
    """Until several searches in a row through the ALB say they were served by `route` (every instance's cache).
    A gateway error (502/503/504, e.g. while the group replaces an instance) ends a streak; the site answering
    nothing else until the deadline fails with its last answer."""
    url = f"{site(ctx)}/api/products?limit=1"
    deadline = time.monotonic() + timeout
    streak, last = 0, "no answer yet"
    while streak < 6:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                last = f"200 served by the {response.headers['X-SecureCart-DB']}"
                streak = streak + 1 if response.headers["X-SecureCart-DB"] == route else 0
        except urllib.error.HTTPError as exc:
            if exc.code not in (502, 503, 504):
                raise
            streak, last = 0, f"{exc.code} {exc.read()[:300]!r}"
        assert time.monotonic() < deadline, f"the app did not switch its reads to the {route} in {timeout} s: {last}"
        time.sleep(0.05)


def served_every_time(url: str, times: int) -> list[str]:
    """GET `url` `times` times through the ALB; the answers that were not a 200 (none when the site serves)."""
    failures = []
    for _ in range(times):
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            failures.append(f"{exc.code} {exc.read()[:300]!r}")
    return failures


def deploy_template(settings, folder: Path, text: str) -> None:
    (folder / "replica.yaml").write_text(text)
    service.deploy(settings, 3, source=folder)


def solution_text(ctx) -> str:
    return (ctx.lab.solution_dir / "replica.yaml").read_text()


def test_starter_fails_the_replica_and_routing_checks(lab3, settings):
    outcome = results(settings)
    assert list(outcome) == CHECKS
    assert {i: o.status for i, o in outcome.items()} == {i: FAIL for i in CHECKS}
    assert "read replica of securecart-db" in outcome["replica-streaming"].message
    assert outcome["failover"].message == "The failover drill has not been run"
    assert outcome["multi-az-failover"].message == "The Multi-AZ drill has not been run"
    assert "chaos az-down" in outcome["multi-az-failover"].hint


def test_reads_left_on_the_primary_fail_reads_on_replica(lab3, settings, folder):
    text = solution_text(lab3)
    start, end = text.index("  # The app looks this up"), text.index("  # Given in the starter")
    deploy_template(settings, folder, text[:start] + text[end:])
    wait_for_route(lab3, "writer")
    outcome = results(settings)
    assert outcome["reads-on-replica"].status == FAIL, outcome["reads-on-replica"]
    assert "0 on securecart-db-replica" in outcome["reads-on-replica"].actual
    for passing in ("replica-streaming", "replica-lag", "replica-read-only", "writes-on-primary"):
        assert outcome[passing].status == PASS, outcome[passing]


def test_a_reader_endpoint_without_its_port_is_named_as_the_cause(lab3, settings, folder):
    text = solution_text(lab3)
    with_port = 'Value: !Sub "${ReadReplica.Endpoint.Address}:${ReadReplica.Endpoint.Port}"'
    assert with_port in text
    deploy_template(settings, folder, text.replace(with_port, 'Value: !Sub "${ReadReplica.Endpoint.Address}"', 1))
    wait_for_route(lab3, "writer")  # the app no longer calls the writer's port "reader"
    outcome = results(settings)["reads-on-replica"]
    assert outcome.status == FAIL
    assert "the value lacks :port (expected 127.0.0.1:" in outcome.actual, outcome.actual


def test_the_solution_template_passes_all_but_the_drill(lab3, settings, folder):
    deploy_template(settings, folder, solution_text(lab3))
    wait_for_route(lab3, "reader")
    assert statuses(settings) == {**{i: PASS for i in CHECKS}, "multi-az-failover": FAIL, "failover": FAIL}


def test_az_down_fails_the_multi_az_writer_over_behind_the_same_endpoint(lab3, settings, cli, folder):
    """Issue 13 item 5: lab 2's Multi-AZ database survives its primary server's crash by itself (was: nothing took
    over, and the instance said `available` with its server down); the lab 3 replica follows the new primary."""
    deploy_template(settings, folder, solution_text(lab3))
    rds = lab3.aws("rds")
    before = rds.describe_db_instances(DBInstanceIdentifier="securecart-db")["DBInstances"][0]
    result = cli("chaos", "az-down")
    assert result.exit_code == 0, result.output
    assert "RDS promotes its synchronous standby behind the same endpoint" in result.output
    deadline = time.monotonic() + 30
    while not any(e["Message"] == "Multi-AZ instance failover completed"
                  for e in rds.describe_events(SourceType="db-instance", SourceIdentifier="securecart-db")["Events"]):
        assert time.monotonic() < deadline, "no failover"
        time.sleep(0.1)
    after = rds.describe_db_instances(DBInstanceIdentifier="securecart-db")["DBInstances"][0]
    assert after["Endpoint"] == before["Endpoint"] and after["DBInstanceStatus"] == "available"
    # The app's /health asks the database: at this lab's time scale the failover window can make the group replace
    # instances (HealthCheckType ELB), as a long failover would on AWS. Wait for the site, then for the routes.
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{site(lab3)}/api/products?limit=1", timeout=5):
                break
        except OSError:  # HTTPError (502/503) and connection errors while instances are replaced
            assert time.monotonic() < deadline, "the site did not come back after the failover"
            time.sleep(0.2)
    wait_for_route(lab3, "reader", timeout=30)
    deadline = time.monotonic() + 30
    judged = {"replica-streaming", "writes-on-primary", "multi-az-failover"}
    while (outcome := {o.id: o for o in service.check(settings, 3, only=judged).outcomes}) \
            and any(o.status != PASS for o in outcome.values()):
        assert time.monotonic() < deadline, {i: o.message for i, o in outcome.items()}
        time.sleep(0.5)
    # Issue 13: the check judged the failover: same endpoint, the standby's AZ, the orders, a new order.
    judged = outcome["multi-az-failover"].message
    assert "securecart-db failed over at " in judged and f"to its standby in {before['SecondaryAvailabilityZone']}" \
        in judged and f"behind the same endpoint {before['Endpoint']['Address']}:{before['Endpoint']['Port']}" in judged
    assert (after["AvailabilityZone"], after["SecondaryAvailabilityZone"]) == (
        before["SecondaryAvailabilityZone"], before["AvailabilityZone"])
    # Moving the writer parameter after a Multi-AZ failover is what it spares you: the check says so.
    lab3.aws("ssm").put_parameter(Name=WRITER_PARAMETER, Type="String", Overwrite=True,
                                  Value=f"{before['Endpoint']['Address']}:{before['Endpoint']['Port']}")
    try:
        moved = {o.id: o for o in service.check(settings, 3, only={"multi-az-failover"}).outcomes}["multi-az-failover"]
        assert moved.status == FAIL and moved.message.startswith(f"{WRITER_PARAMETER} changed after the failover"), \
            moved.message
        assert moved.expected == "not set" and f"Put {WRITER_PARAMETER} back" in moved.hint, moved
    finally:
        lab3.aws("ssm").delete_parameter(Name=WRITER_PARAMETER)


def test_writes_sent_to_the_replica_fail_writes_on_primary(lab3, settings):
    """The writer pointed at the replica: orders are refused. Without the reader parameter this is also the app
    with no fallback (every query on the replica, nothing to fall back to)."""
    ssm = lab3.aws("ssm")
    replica = replicas.topology(lab3.endpoint_url).instances["securecart-db-replica"]
    reader = ssm.get_parameter(Name=READER_PARAMETER)["Parameter"]["Value"]
    ssm.put_parameter(Name=WRITER_PARAMETER, Value=replica.endpoint, Type="String", Overwrite=True)
    try:
        time.sleep(APP_CACHE_SECONDS)
        outcome = results(settings)
        assert outcome["writes-on-primary"].status == FAIL
        assert "names the read replica securecart-db-replica" in outcome["writes-on-primary"].message
        assert outcome["writes-on-primary"].actual.startswith("500")
        assert outcome["replica-streaming"].status == PASS

        ssm.delete_parameter(Name=READER_PARAMETER)
        time.sleep(APP_CACHE_SECONDS)
        assert statuses(settings)["writes-on-primary"] == FAIL
    finally:
        ssm.delete_parameter(Name=WRITER_PARAMETER)
        ssm.put_parameter(Name=READER_PARAMETER, Value=reader, Type="String", Overwrite=True)
    wait_for_route(lab3, "reader")


def test_chaos_refuses_unknown_actions_and_nothing_to_undo(lab3, cli):
    result = cli("chaos", "primary-sideways")
    assert result.exit_code == 1
    assert "Unknown chaos action 'primary-sideways'" in result.output and "primary-down, primary-up" in result.output
    result = cli("chaos", "primary-up")
    assert result.exit_code == 1 and "No primary-down drill to undo" in result.output


def test_solve_runs_the_failover_drill_and_passes_every_check(lab3, settings, cli):
    began = time.perf_counter()
    applied = service.solve(settings, 3).applied
    solved = time.perf_counter() - began
    assert any(line.startswith("Drill: promoted securecart-db-replica") for line in applied), applied
    assert any(line.startswith("Drill: chaos az-down; securecart-db failed over") for line in applied), applied
    began = time.perf_counter()
    outcome = results(settings)
    print(f"\nsolve 3 (with the drill): {solved:.1f} s; check 3: {time.perf_counter() - began:.1f} s")
    assert {i: o.status for i, o in outcome.items()} == {i: PASS for i in CHECKS}, \
        {i: o.message for i, o in outcome.items() if o.status != PASS}
    assert "securecart-db-replica2" in outcome["replica-streaming"].message
    assert "took over from securecart-db" in outcome["failover"].message
    assert "stored 1 more on it after the failover" in outcome["multi-az-failover"].message, outcome["multi-az-failover"]
    # Issue 11 item 3: lab 2's checks follow the writer (the old primary is down and stale now).
    lab2 = {o.id: o for o in service.check(settings, 2, only={"orders-stored", "site-serves-products"}).outcomes}
    assert {i: o.status for i, o in lab2.items()} == {"orders-stored": PASS, "site-serves-products": PASS}, \
        {i: o.message for i, o in lab2.items()}

    result = cli("chaos", "az-down")  # the writer now is the promoted replica, a single-AZ instance
    assert result.exit_code == 1 and "is not Multi-AZ" in result.output, result.output
    # The failed primary comes back as a separate server; the promoted instance stays the writer.
    result = cli("chaos", "primary-up")
    assert result.exit_code == 0, result.output
    assert statuses(settings)["failover"] == PASS
    # The replica promoted while it was down left a slot there; coming back drops it (it would hold WAL forever).
    with postgres.server_for(settings, settings.pg_dir / "securecart-db").connect() as conn:
        slots = [r[0] for r in conn.execute("select slot_name from pg_replication_slots where not active")]
    assert "securecart_db_replica" not in slots


def test_a_changed_template_never_deletes_the_promoted_writer(lab3, settings, folder):
    from securecart_lab.errors import DeployError

    with pytest.raises(DeployError, match="holds securecart-db-replica, which is the writer now"):
        deploy_template(settings, folder, (lab3.lab.starter_dir / "replica.yaml").read_text())


def test_a_drill_record_from_another_environment_means_no_drill_here(lab3, settings):
    """Issue 8 item 11: after down/up (or a crash) the emulator is new; a drill record from before is stale."""
    outage = lab3.lab.module("outage.py")
    record = envstate.load(settings, outage.RECORD, lab3.engine.environment_id())
    assert record is not None  # the drill of the solve test, in this environment
    envstate.save(settings, outage.RECORD, record, "an-earlier-emulator")
    try:
        assert outage.Outage.load(settings) is None
        result = results(settings)["failover"]
        assert result.status == FAIL and result.message == "The failover drill has not been run", result.message
    finally:
        envstate.save(settings, outage.RECORD, record, lab3.engine.environment_id())
    assert outage.Outage.load(settings).instance == "securecart-db"


def test_redo_lab_3_from_scratch_after_the_drill(lab3, settings, cli, folder):
    """Issue 11 items 4 and 10: after the failover, reset 3 refuses before touching files and offers the way to redo
    lab 3; reset 3 --environment redoes it; a learner's own failover without a new replica gets hints that agree."""
    from securecart_lab.postgres import dumps

    starter = (lab3.lab.starter_dir / "replica.yaml").read_text()
    mine = lab3.workspace / "replica.yaml"
    mine.write_text(solution_text(lab3) + "# my notes\n")
    result = cli("reset", "3")
    assert result.exit_code == 1 and "reset 3 --environment" in result.output and "Your files are unchanged" in result.output
    assert mine.read_text().endswith("# my notes\n")

    snapshots_before = dumps.listing(settings)
    result = cli("reset", "3", "--environment")
    assert result.exit_code == 0, result.output
    assert "Deleted DB instance securecart-db-replica2" in result.output
    assert "Deleted stack securecart-lab03 (with securecart-db-replica)" in result.output
    assert "Cleared the failover drill" in result.output and "RDS snapshot" in result.output
    # The learner's next requests are served from lab 2's database (was: 503 until every instance's 5 s cache of
    # the deleted writer expired). Two targets, round robin: each answers twice.
    assert served_every_time(f"{site(lab3)}/api/products?limit=1", 4) == []
    assert "Lab 2's site serves again" in result.output, result.output
    assert mine.read_text() == starter and "Backed up your files" in result.output
    kept = [p for p in dumps.listing(settings) - snapshots_before if p.name.startswith("securecart-lab03-readreplica-")]
    assert kept, "the promoted writer's data is kept in a snapshot"
    topo = replicas.topology(lab3.endpoint_url)
    assert topo.writer_parameter is None and topo.writer.id == "securecart-db" and not topo.replicas
    assert lab3.lab.module("outage.py").Outage.load(settings) is None
    outcome = results(settings)
    assert outcome["failover"].message == "The failover drill has not been run"
    assert outcome["multi-az-failover"].message == "The Multi-AZ drill has not been run"
    assert "deploy 3" in outcome["replica-streaming"].hint

    # The learner's own run of lab 3 again: their replica.yaml, then the failover by hand, without a new replica yet.
    deploy_template(settings, folder, solution_text(lab3))
    assert served_every_time(f"{site(lab3)}/api/products?limit=1", 4) == []
    wait_for_route(lab3, "reader")
    assert cli("chaos", "primary-down").exit_code == 0
    rds, ssm = lab3.aws("rds"), lab3.aws("ssm")
    rds.promote_read_replica(DBInstanceIdentifier="securecart-db-replica")
    promoted = lab3.lab.provisioner().wait_available(rds, ["securecart-db-replica"])["securecart-db-replica"]
    ssm.put_parameter(Name=WRITER_PARAMETER, Type="String", Overwrite=True,
                      Value=f"{promoted['Endpoint']['Address']}:{promoted['Endpoint']['Port']}")
    streaming = results(settings)["replica-streaming"]
    assert streaming.status == FAIL and "create-db-instance-read-replica" in streaming.hint, streaming
    assert "deploy 3" not in streaming.hint and "deploy 3" not in streaming.message
    # solve 3 finishes the runbook the learner started, rather than asking for a deploy that is refused.
    applied = service.solve(settings, 3).applied
    assert "Drill: the writer is already securecart-db-replica, promoted after the failure" in applied, applied
    # The learner lost the Multi-AZ instance without running az-down first: solve cannot undo that, and says so.
    assert any("chaos az-down was not run before securecart-db was lost" in line for line in applied), applied
    outcome = results(settings)
    assert {i: o.status for i, o in outcome.items()} == {**{i: PASS for i in CHECKS}, "multi-az-failover": FAIL}
    skipped = outcome["multi-az-failover"]
    assert skipped.message == "chaos primary-down was run on securecart-db, but chaos az-down was not before it"
    assert "reset 3 --environment" in skipped.hint, skipped.hint
    assert cli("chaos", "primary-up").exit_code == 0


def test_ci_lab_3_passes(lab3, cli, tmp_path):
    # The test before lost the Multi-AZ instance without az-down, which no solve can undo: ci starts from scratch.
    assert cli("reset", "3", "--environment").exit_code == 0
    result = cli("ci", "--lab", "3", "--junit", str(tmp_path / "ci.xml"))
    assert result.exit_code == 0, result.output


def test_reset_environment_says_in_one_line_why_the_stack_could_not_be_deleted_and_a_retry_finishes(lab3, settings,
                                                                                                      cli, folder):
    """DeleteStack answers at once and the stack goes DELETE_FAILED when a resource cannot go (here a replica with
    deletion protection, which RDS refuses to delete): reset 3 --environment waits for that outcome and says it in
    one line with AWS's reason (was: the delete's error surfaced from DeleteStack itself). Run again once the
    cause is gone, it finishes what the first one left."""
    from securecart_lab.labs import stacks

    deploy_template(settings, folder, solution_text(lab3))
    rds, cf = lab3.aws("rds"), lab3.aws("cloudformation")
    [replica] = stacks.resources(cf, "securecart-lab03", "AWS::RDS::DBInstance")
    rds.modify_db_instance(DBInstanceIdentifier=replica, DeletionProtection=True, ApplyImmediately=True)
    try:
        result = cli("reset", "3", "--environment")
    finally:
        rds.modify_db_instance(DBInstanceIdentifier=replica, DeletionProtection=False, ApplyImmediately=True)
    assert result.exit_code == 1, result.output
    [error] = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert error == ("Error: Stack securecart-lab03 could not be deleted (DELETE_FAILED): ReadReplica "
                     "(AWS::RDS::DBInstance): InvalidParameterCombination: Cannot delete protected DB Instance, please "
                     "disable deletion protection and try again."), result.output
    assert "Traceback" not in result.output and "Unexpected" not in result.output
    assert stacks.find(cf, "securecart-lab03")["StackStatus"] == "DELETE_FAILED"
    assert stacks.resources(cf, "securecart-lab03") == [replica]  # the rest went

    result = cli("reset", "3", "--environment")
    assert result.exit_code == 0, result.output
    assert f"Deleted stack securecart-lab03 (with {replica})" in result.output
    assert replica not in {d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"]}
