"""One module per `sweep` subcommand, each with `register(subparsers)`. The commands import their
floors (`sweep.config` .. `sweep.report`) inside `run`, so `sweep --help` stays quick."""

import os
import time

_IMPORTED = time.perf_counter()


class CommandError(Exception):
    """A problem with the user's input, found before any work: one line, exit code 2."""


def process_seconds() -> float:
    """Wall seconds since this process started (interpreter start-up and imports included); on systems
    without /proc, since this module was imported."""
    try:
        with open("/proc/self/stat") as f:
            started = int(f.read().rpartition(")")[2].split()[19]) / os.sysconf("SC_CLK_TCK")
        with open("/proc/uptime") as f:
            return float(f.read().split()[0]) - started
    except (OSError, ValueError, IndexError):
        return time.perf_counter() - _IMPORTED
