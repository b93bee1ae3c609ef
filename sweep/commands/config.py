"""`sweep config CONFIG [--set ...]`: print the resolved experiment and sweep (every default filled in,
every override applied) as YAML, after the same checks as `sweep run`; runs nothing."""

from __future__ import annotations

import argparse

from sweep.commands.train import add_set_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("config", help="print the resolved experiment and sweep of a config")
    parser.add_argument("config", help="config YAML, e.g. configs/digits.yaml")
    add_set_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import yaml

    from sweep.config import load_config, load_sweep, read_yaml

    if "sweep" in read_yaml(args.config):
        resolved = load_sweep(args.config, args.overrides).to_dict()
    else:
        resolved = load_config(args.config, args.overrides).model_dump(mode="json")
    print(yaml.safe_dump(resolved, sort_keys=False, width=100), end="")
    return 0
