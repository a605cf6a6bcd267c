"""Which kit extension each moto service needs, installed on the first request to that service.

moto builds a service's backend app on the first request routed to it; the kit installs that service's
extensions just before, so the emulator answers its first call (say `sts get-caller-identity`) without
importing Step Functions, EC2 or CloudFormation, and stays small until a lab uses them.

Where one service reaches another's models directly (not over HTTP), both services' extensions are installed
together: Auto Scaling launches EC2 instances and registers ALB targets; CloudFormation creates any resource, so it
installs everything. Everything else a service triggers in another (an EventBridge target, an SNS subscription)
concerns a resource that was created through its own service's API, or by CloudFormation, so its extension is
already there.
"""

from __future__ import annotations

import importlib
import logging
import re
import sys
import threading
from collections.abc import Callable

from securecart_lab.emulator import hooks
from securecart_lab.emulator.bridges import BRIDGES

LOG = logging.getLogger(__name__)


def _lambda() -> None:
    from securecart_lab.emulator import event_sources, lambda_runtime

    lambda_runtime.install()
    event_sources.install()


def _s3website() -> None:
    from securecart_lab.emulator import s3website

    s3website.install(*_website_endpoint)


def _call(module: str, function: str = "install") -> Callable[[], None]:
    """An installer that imports securecart_lab.emulator.<module> only when it runs (lazy start), then calls it."""
    return lambda: getattr(importlib.import_module(f"securecart_lab.emulator.{module}"), function)()


INSTALLERS: dict[str, Callable[[], None]] = {
    "stepfunctions": _call("stepfunctions"),
    "iam.stepfunctions": _call("iam", "install_stepfunctions"),
    "iam.simulator": _call("iam", "install_simulator"),
    "iam.sts": _call("iam", "install_sts"),
    "lambda": _lambda,
    "events": _call("events"),
    "sqs": _call("sqs"),
    "dynamodb": _call("dynamodb"),
    "logs": _call("logs"),
    "s3website": _s3website,
    "schemas": _call("schemas"),
    **{f"bridges.{name}": _call(f"bridges.{name}") for name in BRIDGES},
}

# moto backend name (as its dispatcher names it) -> the extensions to install before its first request.
NEEDS: dict[str, tuple[str, ...]] = {
    "stepfunctions": ("stepfunctions", "iam.stepfunctions"),
    "iam": ("iam.simulator",),
    "sts": ("iam.sts",),
    "awslambda": ("lambda",),
    "events": ("events",),
    "sqs": ("sqs",),
    "dynamodb": ("dynamodb",),
    "logs": ("logs",),
    "s3": ("s3website",),
    "rds": ("bridges.rds", "bridges.replicas"),
    "ec2": ("bridges.ec2",),
    "autoscaling": ("bridges.ec2", "bridges.elbv2", "bridges.activities"),
    "elb": ("bridges.elbv2", "bridges.ec2"),  # ELBv2 requests (signing name elasticloadbalancing) route here
    "elbv2": ("bridges.elbv2", "bridges.ec2"),
    "schemas": ("schemas", "events"),  # discoverers watch the events put on a bus
    "cloudformation": tuple(INSTALLERS),
}

# Services moto lacks, served by a kit module of the same name (its backend_app()), recognised by their Host.
KIT_SERVICES: dict[str, re.Pattern] = {"schemas": re.compile(r"https?://schemas\.(.+)\.amazonaws\.com")}

# Services the health document lists, and the moto package behind each.
MOTO_PACKAGES = {
    "s3": "s3", "sqs": "sqs", "sns": "sns", "dynamodb": "dynamodb", "lambda": "awslambda",
    "stepfunctions": "stepfunctions", "events": "events", "logs": "logs", "iam": "iam", "sts": "sts",
    "cloudwatch": "cloudwatch", "rds": "rds", "ec2": "ec2", "elbv2": "elbv2", "autoscaling": "autoscaling",
    "cloudformation": "cloudformation", "ssm": "ssm", "secretsmanager": "secretsmanager", "kms": "kms",
}

_installed: list[str] = []
_lock = threading.RLock()
_website_endpoint: tuple[str, int] = ("127.0.0.1", 4566)


def configure(host: str, port: int) -> None:
    """Where the emulator listens (the S3 website URLs name it)."""
    global _website_endpoint
    _website_endpoint = (host, port)


def install(*names: str) -> None:
    """Install the named extensions once each, in order."""
    with _lock:
        for name in names:
            if name not in _installed:
                INSTALLERS[name]()
                _installed.append(name)
                LOG.debug("extension %s installed", name)


def ensure(service: str) -> None:
    """Install what a moto service needs before it serves its first request."""
    install(*NEEDS.get(service, ()))


def install_all() -> None:
    install(*INSTALLERS)


def installed() -> list[str]:
    with _lock:
        return list(_installed)


def backend_app(service: str):
    """moto's create_backend_app, with the service's extensions installed first (the dispatcher calls this once
    per service, under its lock). Anything moto lets escape answers an AWS-shaped error (aws_errors.py)."""
    from securecart_lab.emulator import aws_errors

    ensure(service)
    if service in KIT_SERVICES:
        app = importlib.import_module(f"securecart_lab.emulator.{service}").backend_app()
    else:
        app = hooks.resolve("server.backend_app")(service)
    aws_errors.install(app, service)
    return app


def loaded_services() -> set[str]:
    """Services whose moto package (or kit module) this process has imported (by a request or by another service)."""
    return {name for name, package in MOTO_PACKAGES.items() if f"moto.{package}" in sys.modules} | {
        name for name in KIT_SERVICES if f"securecart_lab.emulator.{name}" in sys.modules}
