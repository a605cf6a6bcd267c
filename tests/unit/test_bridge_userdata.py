"""The user-data convention that makes an EC2 instance a SecureCart app process."""

import base64

import pytest

from securecart_lab.emulator.bridges.userdata import decode, parse


def test_exports_and_the_app_command_give_the_environment():
    script = """#!/bin/bash
set -euo pipefail
export PORT=8080
export DB_HOST=127.0.0.1 DB_PORT="15432"   # the RDS endpoint
DB_NAME=storefront
export DB_USER=admin DB_PASSWORD='s3cr et'
READER=${DB_HOST}:$DB_PORT
cd /opt/securecart && EXTRA=1 exec /usr/bin/python3 -m securecart_lab.app &
"""
    launch = parse(script)
    assert launch is not None
    assert launch.env == {"PORT": "8080", "DB_HOST": "127.0.0.1", "DB_PORT": "15432", "DB_NAME": "storefront",
                          "DB_USER": "admin", "DB_PASSWORD": "s3cr et", "READER": "127.0.0.1:15432", "EXTRA": "1"}


def test_inline_variables_and_the_console_script():
    assert parse("DB_HOST=db nohup securecart-app\n").env == {"DB_HOST": "db"}


@pytest.mark.parametrize("script", ["", "#!/bin/bash\nyum install -y httpd\nsystemctl start httpd\n",
                                    "echo python3 -m securecart_lab.app\n", "python3 -m http.server\n"])
def test_no_app_command_means_a_plain_instance(script):
    assert parse(script) is None


def test_decode_accepts_base64_and_plain_text():
    text = "#!/bin/bash\nsecurecart-app\n"
    assert decode(base64.b64encode(text.encode()).decode()) == text
    assert decode(text) == text and decode(None) == ""
