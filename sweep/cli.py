"""`sweep`: the command line. Each subcommand is a module in `sweep/commands/` with
`register(subparsers)`; heavy imports happen inside the commands, so `sweep --help` is quick."""

from __future__ import annotations

import argparse
import importlib
import sys

from sweep.commands import CommandError

COMMANDS = ("train", "eval", "run", "report", "config", "list")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sweep",
        description="noisesweep: train and compare noise-robust networks for analog in-memory computing.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"sweep.commands.{name}")
        module.register(subparsers)
        sub = subparsers.choices[name]
        sub.description = sub.description or (module.__doc__ or "").split("\n\n")[0].replace("\n", " ")
    return parser


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("noisesweep")
    except PackageNotFoundError:
        return "unknown (not installed)"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # bare `sweep`: the help, not an error
        parser.print_help()
        return 0
    from sweep.config import ConfigError, DiskFull  # not at the top: it imports torch, and `sweep --help` needs none

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
