"""`sweep`: the command line. Each subcommand is a module in `sweep/commands/` with
`register(subparsers)`; heavy imports happen inside the commands, so `sweep --help` is quick."""

from __future__ import annotations

import argparse
import importlib
import sys

from sweep.commands import CommandError

COMMANDS = ("train", "eval", "run", "report", "list")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sweep",
        description="noisesweep: train and compare noise-robust networks for analog in-memory computing.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"sweep.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from sweep.config import ConfigError, DiskFull  # not at the top: torch, and `sweep --help` needs none

    try:
        return int(args.func(args) or 0)
    except (ConfigError, CommandError) as err:
        print(f"sweep {args.command}: error: {err}", file=sys.stderr)
        return 2
    except DiskFull as err:
        print(f"sweep {args.command}: error: {err.strerror}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"sweep {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
