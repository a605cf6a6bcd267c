"""The lazy extension table is complete, and the SQS and DynamoDB hot paths no longer walk the whole queue or table
(sqs.py, dynamodb.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from securecart_lab.emulator import extensions

ROOT = Path(__file__).resolve().parents[2]


def test_every_extension_is_installed_by_some_service():
    # CloudFormation installs everything; each extension must also come with the API of a service it extends.
    needed = {name for service, names in extensions.NEEDS.items() if service != "cloudformation" for name in names}
    assert needed == set(extensions.INSTALLERS) - {"bridges.cloudformation"}
    assert set(extensions.NEEDS["cloudformation"]) == set(extensions.INSTALLERS)


def test_needs_names_moto_backends():
    import moto.backend_index as index

    backends = {name for name, _ in index.backend_url_patterns}
    assert set(extensions.NEEDS) <= backends | set(extensions.KIT_SERVICES)
    assert set(extensions.MOTO_PACKAGES.values()) <= backends
    assert not set(extensions.KIT_SERVICES) & backends, "moto now has a service the kit adds: re-check the kit's"


def test_services_the_kit_adds_are_routed_to_its_own_apps():
    out = _run(
        "from securecart_lab.emulator import extensions, hooks, routing\n"
        "routing.install_dispatcher()\n"
        "dispatcher = hooks.resolve('server.dispatcher')(lambda service: None)\n"
        "print(dispatcher.get_backend_for_host('schemas.eu-west-1.amazonaws.com'),\n"
        "      dispatcher.get_backend_for_host('events.us-east-1.amazonaws.com'))\n"
        "app = extensions.backend_app('schemas')\n"
        "print(type(app).__name__, 'schemas' in extensions.installed(), 'events' in extensions.installed())\n"
    )
    assert out.split() == ["schemas", "events", "Flask", "True", "True"]


def test_every_extended_service_is_routed_to_a_backend_with_needs():
    """The dispatcher names backends by URL: ELBv2's requests (elasticloadbalancing) reach moto's "elb" app."""
    from securecart_lab.emulator import hooks

    dispatcher = hooks.resolve("server.dispatcher")(lambda service: None)
    signing_names = ("states", "lambda", "events", "sqs", "s3", "rds", "ec2", "autoscaling", "elasticloadbalancing",
                     "cloudformation")
    routed = {name: dispatcher.get_backend_for_host(f"{name}.us-east-1.amazonaws.com") for name in signing_names}
    assert {name: backend for name, backend in routed.items() if backend not in extensions.NEEDS} == {}


def _run(code: str) -> str:
    # Patching moto globally would leak into other tests: run in a child process.
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_starting_the_app_imports_no_service():
    out = _run(
        "import sys\n"
        "from securecart_lab.emulator import server\n"
        "server.build_app('127.0.0.1', 1)\n"
        "print(sorted(m for m in sys.modules if m.startswith('moto.') and m.count('.') == 1\n"
        "      and m not in ('moto.core', 'moto.moto_server', 'moto.backends', 'moto.backend_index', 'moto.settings',\n"
        "                    'moto.utilities')))\n"
    )
    assert out.strip() == "[]"


def test_sqs_send_receive_delete_build_no_queue_attributes():
    """moto built every queue attribute (three walks of the queue) per send and three times per received message."""
    out = _run(
        "from securecart_lab.emulator import extensions\n"
        "extensions.install('sqs')\n"
        "from moto.sqs import models\n"
        "built = []\n"
        "attributes = models.Queue.attributes\n"
        "models.Queue.attributes = property(lambda q: built.append(1) or attributes.fget(q))\n"
        "backend = models.sqs_backends['123456789012']['us-east-1']\n"
        "backend.create_queue('q')\n"
        "for i in range(300):\n"
        "    backend.send_message('q', f'm{i}')\n"
        "received = [backend.receive_message('q', 1, 0, 30)[0] for _ in range(100)]\n"
        "for message in received:\n"
        "    backend.delete_message('q', message.receipt_handle)\n"
        "print(len(built), [m.body for m in received[:3]], len(backend.get_queue('q').messages))\n"
    )
    assert out.split() == ["0", "['m0',", "'m1',", "'m2']", "200"]


def test_fifo_sends_neither_build_attributes_nor_walk_the_queue():
    """moto built every attribute four times per FIFO send and compared its deduplication id with every message."""
    out = _run(
        "from securecart_lab.emulator import extensions\n"
        "extensions.install('sqs')\n"
        "from moto.sqs import models\n"
        "built, walks = [], []\n"
        "attributes = models.Queue.attributes\n"
        "models.Queue.attributes = property(lambda q: built.append(1) or attributes.fget(q))\n"
        "class Walked(list):\n"
        "    def __iter__(self):\n"
        "        walks.append(1)\n"
        "        return super().__iter__()\n"
        "backend = models.sqs_backends['123456789012']['us-east-1']\n"
        "queue = backend.create_queue('q.fifo', FifoQueue='true', ContentBasedDeduplication='true')\n"
        "queue._messages = Walked()\n"
        "for i in range(300):\n"
        "    backend.send_message('q.fifo', f'm{i}', group_id=f'g{i % 3}')\n"
        "sends = (len(built), len(walks))\n"
        "backend.send_message('q.fifo', 'm299', group_id='g2')  # a duplicate: the queue is walked to find it\n"
        "backend.send_message('q.fifo', 'explicit', group_id='g0', deduplication_id='d1')\n"
        "backend.send_message('q.fifo', 'explicit again', group_id='g0', deduplication_id='d1')\n"
        "received = [m.body for m in backend.receive_message('q.fifo', 10, 0, 30)]\n"
        "print(sends, len(queue._messages), received)\n"
    )
    assert out.strip() == "(0, 0) 301 " + str([f'm{i}' for i in range(10)])


def test_a_table_query_reads_only_its_partition():
    """moto sorted every item of the table (all_items) on each Query of the table."""
    out = _run(
        "from securecart_lab.emulator import extensions\n"
        "extensions.install('dynamodb')\n"
        "from moto.dynamodb.models import dynamodb_backends\n"
        "from moto.dynamodb.models.table import Table\n"
        "walked = []\n"
        "all_items = Table.all_items\n"
        "Table.all_items = lambda self: walked.append(1) or all_items(self)\n"
        "backend = dynamodb_backends['123456789012']['us-east-1']\n"
        "backend.create_table('t', schema=[{'AttributeName': 'pk', 'KeyType': 'HASH'},\n"
        "                                  {'AttributeName': 'sk', 'KeyType': 'RANGE'}],\n"
        "    attr=[{'AttributeName': 'pk', 'AttributeType': 'S'}, {'AttributeName': 'sk', 'AttributeType': 'N'}],\n"
        "    throughput=None, billing_mode='PAY_PER_REQUEST', indexes=None, global_indexes=None, streams=None,\n"
        "    sse_specification=None, tags=None, deletion_protection_enabled=False, warm_throughput=None)\n"
        "for i in range(500):\n"
        "    backend.put_item('t', {'pk': {'S': f'p{i % 50}'}, 'sk': {'N': str(500 - i)}})\n"
        "items, scanned, last = backend.query('t', {'S': 'p7'}, None, [], None, None, True, None)\n"
        "print(len(walked), [int(item.range_key.value) for item in items][:3], scanned, last)\n"
    )
    assert out.strip() == "0 [43, 93, 143] 10 None"
