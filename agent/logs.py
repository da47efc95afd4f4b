"""Logging to stderr, one line per event, readable by journald and by a person at a terminal.

Under systemd (JOURNAL_STREAM is set) each line starts with the syslog priority in angle
brackets, which journald turns into the entry's level, so `journalctl -p warning` works; the
timestamp is left out because journald adds its own.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import Literal

_SYSLOG_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


class _JournalFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        priority = _SYSLOG_PRIORITY.get(record.levelno, 6)
        text = super().format(record)
        # journald reads one entry per line: keep tracebacks inside the one entry.
        return f"<{priority}>" + text.replace("\n", " | ")


def under_journald(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return bool(env.get("JOURNAL_STREAM"))


def configure_logging(level: str, timestamps: Literal["auto", "always", "never"] = "auto") -> None:
    journald = under_journald()
    show_time = timestamps == "always" or (timestamps == "auto" and not journald)
    pattern = "%(levelname)s %(name)s: %(message)s"
    if show_time:
        pattern = "%(asctime)s " + pattern
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JournalFormatter(pattern) if journald else logging.Formatter(pattern))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # pymodbus logs every failed request at ERROR; our own counters and warnings say it better.
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
