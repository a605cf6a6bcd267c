"""Messages and state that must say one coherent thing: chaos names every database it took down; a lab not set up says start; purge forgets RDS logins."""

from securecart_lab.commands.chaos import confirmed_before, down_with_it
from securecart_lab.replicas import Outage


def test_the_lab_database_is_named_with_the_others():
    outage = Outage(instance="securecart-db", host="127.0.0.1", port=5432, datadir="/tmp/pg", dbname="storefront", at="now",
                    orders=[], shared_with=["securecart"])
    text = down_with_it(outage)
    assert "storefront (securecart-db, the lab's database)" in text
    assert "securecart (the kit's own)" in text
    assert confirmed_before(outage) == "0 orders were confirmed before the failure; `check 3` looks for each of them after your failover."
    one = Outage(**{**outage.__dict__, "orders": ["ord-1"]})
    assert confirmed_before(one).startswith("1 order was confirmed before the failure; `check 3` looks for it")


def test_a_lab_not_set_up_gives_one_next_step_in_message_and_hint():
    """After down/up the engine is empty: every row says start, none says deploy (which would fail)."""
    from securecart_lab import paths
    from securecart_lab.checking import load_checks
    from securecart_lab.labs.registry import get_lab
    from securecart_lab.labs.service import _not_started

    lab = get_lab(1)
    for chk in load_checks(lab.checks_file(paths.checks_dir())):
        outcome = _not_started(chk, lab)
        assert 'Run "securecart-lab start 1"' in outcome.message
        assert outcome.hint.startswith('Run "securecart-lab start 1"') and "deploy 1" not in outcome.hint
        assert not outcome.more


def test_purge_forgets_the_recorded_rds_logins(isolated_settings):
    from securecart_lab import shellenv
    from securecart_lab.engines.local import LocalEngine

    path = shellenv.add_pgpass_entry(isolated_settings, "*", "*", "storefront", "securecart_admin", "old-password")
    LocalEngine(isolated_settings).down(purge=False)
    assert path.exists()
    LocalEngine(isolated_settings).down(purge=True)
    assert not path.exists()
