"""Logging of the roomguard commands: one format, libraries kept quiet, no frame dumps in the log.

pymodbus appends a hex dump of the last frames it sent and received to every error it logs when debug
logging is off (pymodbus/logging.py `Log.error` → `get_last_frames`): every timed-out request then writes
a screenful of `>>>>> send: 0x0 0x6 …` into the collector's log. Our transport already reports the same
failure as a typed error that the poller logs once per outage, so the dump is cut off.
"""

from __future__ import annotations

import logging

FRAME_DUMP = "\n>>>>>"
# Chatty at INFO/DEBUG; their problems surface through our own warnings.
QUIET_LIBRARIES = ("pymodbus", "paho", "pysnmp")


class FrameDumpFilter(logging.Filter):
    """Cuts pymodbus's appended frame dumps off a log record, keeping its first line."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep the record, without the dump."""
        if isinstance(record.msg, str) and FRAME_DUMP in record.msg:
            record.msg = record.msg.split(FRAME_DUMP, 1)[0]
        return True


def configure_logging(verbose: bool, *, level: int = logging.INFO, fmt: str | None = None) -> None:
    """Set up the process's logging for a roomguard command (`verbose`: debug for everything)."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else level,
        format=fmt or "%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in QUIET_LIBRARIES:
        # Even with -v: their debug output holds raw packets (an SNMP community travels in clear text).
        logging.getLogger(noisy).setLevel(logging.WARNING)
    frames = logging.getLogger("pymodbus.logging")
    if not any(isinstance(f, FrameDumpFilter) for f in frames.filters):
        frames.addFilter(FrameDumpFilter())


__all__ = ["FrameDumpFilter", "configure_logging"]
