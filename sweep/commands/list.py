"""`sweep list`: the registered data sets, models, methods, noise models and presets."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("list", help="list the registered data sets, models, methods, noise models")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sweep.config import allowed_names

    for family, names in allowed_names().items():
        print(f"{family:>13}: {', '.join(names)}")
    return 0
