"""Log lines: JSON by default, one object per line, carrying the ``msg_id``,
``account_id`` and ``event`` that callers pass in ``extra``."""

from __future__ import annotations

import logging
import sys
from typing import Literal

from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def configure_logging(level: str, fmt: Literal["json", "text"]) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"}))
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aio-pika logs every reconnect attempt at length; its warnings are enough, but for its
    # connection's: svc logs one line when the broker is lost and one when it is back
    logging.getLogger("aio_pika").setLevel(max(logging.getLevelName(level), logging.WARNING))
    # ... and what aio-pika and aiormq log about that same loss (the connection closed, the
    # reader stopped with its traceback, channels that could not reopen yet) would repeat it
    for name in ("aio_pika.robust_connection", "aio_pika.tools", "aiormq.connection"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    logging.getLogger("aiormq").setLevel(max(logging.getLevelName(level), logging.WARNING))
