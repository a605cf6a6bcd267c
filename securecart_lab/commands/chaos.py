"""chaos: failure drills on the lab database (lab 3)."""

from __future__ import annotations

from securecart_lab import config
from securecart_lab.config import Settings
from securecart_lab.console import console, spinner
from securecart_lab.engines import get_engine
from securecart_lab.errors import LabError
from securecart_lab.labs.registry import get_lab

ACTIONS = ("primary-down", "primary-up", "az-down")


def chaos(settings: Settings, action: str) -> None:
    if action not in ACTIONS:
        raise LabError(f"Unknown chaos action {action!r}.", f"Use one of: {', '.join(ACTIONS)}.")
    if settings.engine != "local":
        raise LabError(f"chaos needs the local engine (found {settings.engine}): it stops real PostgreSQL servers.",
                       "Run it with --engine local.")
    get_engine(settings).require_running()
    drill = get_lab(3).module("outage.py")  # lab 3's drill lives with the lab
    if action == "primary-down":
        with spinner("Stopping the writer's PostgreSQL server..."):
            outage = drill.primary_down(settings)
        console.print(f"[bold red]{outage.instance}[/] is down: its PostgreSQL server on {outage.host}:{outage.port} "
                      f"(and its Multi-AZ standby, if any) was stopped (immediate shutdown, as in a crash) at {outage.at}: "
                      "the instance is lost, as when its Region fails.")
        if outage.shared_with:
            console.print("[yellow]Warning:[/] " + down_with_it(outage))
        console.print(confirmed_before(outage))
        console.print("Next: aws rds promote-read-replica --db-instance-identifier <your replica>, then point "
                      "/securecart/db/writer-endpoint at it (README, step 3).")
    elif action == "az-down":
        with spinner("Crashing the writer's primary server..."):
            writer = drill.az_down(settings)
        console.print(f"[bold red]{writer.id}[/]'s primary server on {writer.endpoint} crashed, as when its Availability "
                      "Zone fails. It is Multi-AZ: RDS promotes its synchronous standby behind the same endpoint.")
        console.print(f"Watch: aws rds describe-db-instances --db-instance-identifier {writer.id} --query "
                      "'DBInstances[0].[DBInstanceStatus,Endpoint.Port,AvailabilityZone,SecondaryAvailabilityZone]', "
                      f"then aws rds describe-events --source-type db-instance --source-identifier {writer.id}")
        console.print("Then place an order on the site, writer parameter unchanged; `check 3` (multi-az-failover) "
                      "judges the failover, and looks for every order confirmed before it.")
    else:
        with spinner("Starting the server again..."):
            outage = drill.primary_up(settings)
        console.print(f"[green]{outage.instance}'s server on {outage.host}:{outage.port} is running again.[/] "
                      "It is a separate database now: the app keeps writing wherever /securecart/db/writer-endpoint points.")


def down_with_it(outage) -> str:
    """Every database the stopped server held: the lab's own first, then the others (on AWS, each would be alone)."""
    others = [f"{name} (the kit's own)" if name == config.DB_NAME else name for name in outage.shared_with]
    return (f"the whole server stopped, so every database on it is down: {outage.dbname} ({outage.instance}, the lab's "
            f"database), {', '.join(others)}.")


def confirmed_before(outage) -> str:
    if len(outage.orders) == 1:
        return "1 order was confirmed before the failure; `check 3` looks for it after your failover."
    return (f"{len(outage.orders)} orders were confirmed before the failure; `check 3` looks for each of them after "
            "your failover.")
