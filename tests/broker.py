"""The test broker: its URL, ``rabbitmqctl``, virtual-host URLs (SVC_TEST_AMQP_URL and
SVC_TEST_RABBITMQCTL point them elsewhere, e.g. ``docker exec rabbitmq rabbitmqctl``)."""

from __future__ import annotations

import os
import shlex
import subprocess
from urllib.parse import quote, urlsplit, urlunsplit

AMQP_URL = os.environ.get("SVC_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
RABBITMQCTL = shlex.split(os.environ.get("SVC_TEST_RABBITMQCTL", "rabbitmqctl"))


def rabbitmqctl(*args: str) -> str:
    return subprocess.run([*RABBITMQCTL, *args], check=True, capture_output=True, text=True,
                          timeout=60).stdout


def url_for(vhost: str) -> str:
    parts = urlsplit(AMQP_URL)
    return urlunsplit(parts._replace(path="/" + quote(vhost, safe="")))
