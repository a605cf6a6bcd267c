"""The emulator installs the lab 2 and lab 3 bridges. (Every moto point they patch is checked, with all the
others, in test_emulator_hooks.py.)"""

from securecart_lab.emulator.bridges import BRIDGES


def test_the_bridges_are_installed_by_the_emulator():
    assert {"cloudformation", "rds", "ec2", "elbv2", "replicas"} <= set(BRIDGES)


def test_auto_scaling_judges_elb_health_only_after_the_grace_period_and_replaces_after_a_while(monkeypatch):
    """asg_health on stand-ins for moto's group and instance state: the clock is moved, nothing sleeps."""
    from types import SimpleNamespace

    from securecart_lab.emulator.bridges import asg_health

    monkeypatch.setenv("SECURECART_TIME_SCALE", "1")
    clock = [1000.0]
    monkeypatch.setattr(asg_health.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(asg_health, "_unhealthy", {})

    def state(instance_id):
        return SimpleNamespace(instance=SimpleNamespace(id=instance_id), lifecycle_state="InService",
                               health_status="Healthy", auto_scaling_group_name="g")

    served, starting, plain = state("i-served"), state("i-starting"), state("i-plain")
    group = SimpleNamespace(health_check_type="ELB", health_check_grace_period=60, target_group_arns=["tg"],
                            instance_states=[served, starting, plain])
    unhealthy = lambda arn, instance_id: "unhealthy"  # noqa: E731 - every target fails its checks
    served_since = {"i-served": 1000.0}  # i-starting's app has not answered yet; i-plain runs no app

    clock[0] = 1059.0
    asg_health.judge(group, served_since, unhealthy)
    assert [s.health_status for s in group.instance_states] == ["Healthy"] * 3  # within the grace period
    clock[0] = 1060.0
    asg_health.judge(group, served_since, unhealthy)
    assert [s.health_status for s in group.instance_states] == ["Unhealthy", "Healthy", "Healthy"]
    members = {"i-served", "i-starting", "i-plain"}
    assert asg_health.due(members) == []  # shown Unhealthy first
    clock[0] = 1060.0 + asg_health.REPLACE_AFTER_SECONDS
    [(instance_id, verdict)] = asg_health.due(members)
    assert instance_id == "i-served" and verdict.cause == asg_health.ELB_CAUSE and verdict.crash is None

    group.health_check_type = "EC2"  # the default: target health does not matter, SetInstanceHealth does
    plain.health_status = "Unhealthy"
    asg_health.judge(group, served_since, unhealthy)
    assert asg_health.pending("i-plain") and not asg_health.pending("i-starting")
    assert asg_health.due({"i-starting"}) == [] and not asg_health.pending("i-plain")  # left its group: forgotten
