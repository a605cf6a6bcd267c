"""Lab 3 on the real local engine: the starter fails, wrong configurations fail the check they should, the
reference solution (with its failover drill) passes every check. The module puts the session's engine back as
lab 2 left it: primary up, no writer parameter, no lab 3 stack, no replicas."""

from __future__ import annotations

import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from securecart_lab import postgres, replicas
from securecart_lab.app.config import READER_PARAMETER, WRITER_PARAMETER
from securecart_lab.checking import FAIL, PASS
from securecart_lab.labs import stacks
from securecart_lab.labs import service
from securecart_lab.labs.registry import get_lab
from securecart_lab.postgres.testing import remove_home

pytestmark = pytest.mark.integration

CHECKS = ["replica-streaming", "replica-lag", "replica-read-only", "reads-on-replica", "writes-on-primary", "failover"]
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
    if replicas.Outage.load(settings) is not None:
        try:
            replicas.primary_up(settings)
        except Exception:
            pass
        (settings.home / replicas.DRILL_FILE).unlink()
    ssm, rds = ctx.aws("ssm"), ctx.aws("rds")
    cloudformation = ctx.aws("cloudformation")
    cloudformation.delete_stack(StackName="securecart-lab03")
    stacks.wait(cloudformation, "securecart-lab03")
    for name in (WRITER_PARAMETER, READER_PARAMETER):
        try:
            ssm.delete_parameter(Name=name)
        except ssm.exceptions.ParameterNotFound:
            pass
    for instance in rds.describe_db_instances()["DBInstances"]:
        if instance["DBInstanceIdentifier"].startswith("securecart-db-replica"):
            try:
                rds.delete_db_instance(DBInstanceIdentifier=instance["DBInstanceIdentifier"], SkipFinalSnapshot=True)
            except rds.exceptions.DBInstanceNotFoundFault:
                pass  # deleted with the stack a moment ago


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
    """Until several searches in a row through the ALB say they were served by `route` (every instance's cache)."""
    deadline = time.monotonic() + timeout
    streak = 0
    while streak < 6:
        with urllib.request.urlopen(f"{site(ctx)}/api/products?limit=1", timeout=5) as response:
            streak = streak + 1 if response.headers["X-SecureCart-DB"] == route else 0
        assert time.monotonic() < deadline, f"the app did not switch its reads to the {route}"
        time.sleep(0.05)


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
    assert statuses(settings) == {**{i: PASS for i in CHECKS}, "failover": FAIL}


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
    began = time.perf_counter()
    outcome = results(settings)
    print(f"\nsolve 3 (with the drill): {solved:.1f} s; check 3: {time.perf_counter() - began:.1f} s")
    assert {i: o.status for i, o in outcome.items()} == {i: PASS for i in CHECKS}, \
        {i: o.message for i, o in outcome.items() if o.status != PASS}
    assert "securecart-db-replica2" in outcome["replica-streaming"].message
    assert "took over from securecart-db" in outcome["failover"].message

    # The failed primary comes back as a separate server; the promoted instance stays the writer.
    result = cli("chaos", "primary-up")
    assert result.exit_code == 0, result.output
    assert statuses(settings)["failover"] == PASS
    # The replica promoted while it was down left a slot there; coming back drops it (it would hold WAL forever).
    with postgres.primary(settings).connect() as conn:
        slots = [r[0] for r in conn.execute("select slot_name from pg_replication_slots where not active")]
    assert "securecart_db_replica" not in slots


def test_a_changed_template_never_deletes_the_promoted_writer(lab3, settings, folder):
    from securecart_lab.errors import DeployError

    with pytest.raises(DeployError, match="holds securecart-db-replica, which is the writer now"):
        deploy_template(settings, folder, (lab3.lab.starter_dir / "replica.yaml").read_text())


def test_ci_lab_3_passes(lab3, cli, tmp_path):
    result = cli("ci", "--lab", "3", "--junit", str(tmp_path / "ci.xml"))
    assert result.exit_code == 0, result.output
