"""`sweep eval CHECKPOINT`: the robustness curve of a trained model under any noise model, as a table,
and one table per deployment setting (`--deploy` or the config's `eval.deploy`), each naming its axis
and unit."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from sweep.commands import CommandError
from sweep.commands.train import add_threads_argument

EDITABLE = ("noise", "eval", "data")
"""Config sections `--set` may change here (the model and its training are fixed by the checkpoint)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="robustness curve of a checkpoint (accuracy vs noise scale, Monte Carlo)",
        description="Monte Carlo robustness curve of a checkpoint from `sweep train`. Defaults come from "
        "the checkpoint's config (its training noise model and its eval section).",
    )
    parser.add_argument("checkpoint", help="checkpoint.pt or the folder holding it")
    parser.add_argument("--noise", metavar="NAME", help="noise model or preset (`sweep list` shows them)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a noise/eval/data key, e.g. --set noise.bits=4 --set noise.t_inference=86400",
    )
    parser.add_argument("--scales", metavar="S0,S1,...", help="noise scales, e.g. 0,0.05,0.1,0.2")
    parser.add_argument("--samples", type=int, help="Monte Carlo draws per scale (the minimum with --target-ci)")
    parser.add_argument("--target-ci", type=float, help="draw until the 95%% CI half-width is at most this")
    parser.add_argument("--max-samples", type=int, help="upper bound on draws per scale with --target-ci")
    parser.add_argument("--seed", type=int, help="seed of the common random numbers")
    parser.add_argument("--split", choices=("test", "val"), default="test", help="data split (default: test)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="where to evaluate")
    parser.add_argument(
        "--deploy",
        metavar="SETTINGS",
        help="deployment settings, each judged on its own axis (replaces the config's eval.deploy): a YAML/JSON "
        "file or text holding a list such as '[{name: pcm_time}, {name: attack, steps: 10}]', or setting "
        "names such as sigma,pcm_time,attack (defaults)",
    )
    parser.add_argument("--json", metavar="OUT", help="also write the curves as JSON to this file")
    add_threads_argument(parser)
    parser.set_defaults(func=run)


def parse_scales(text: str) -> list[float]:
    try:
        return [float(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise CommandError(f"--scales {text!r}: expected comma-separated numbers, e.g. 0,0.05,0.1") from None


def eval_config(raw: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The checkpoint's config with the command line applied (validated by the caller)."""
    import hardware
    from sweep.config import apply_overrides

    if args.noise is not None:
        if args.noise in hardware.PRESETS:
            raw["noise"] = {"preset": args.noise}
        elif args.noise in hardware.noise_names():
            raw["noise"] = {"name": args.noise}
        else:
            allowed = ", ".join([*hardware.noise_names(), *sorted(hardware.PRESETS)])
            raise CommandError(f"--noise {args.noise!r}: not a noise model or preset; allowed: {allowed}")
    for pair in args.overrides:
        if pair.split(".", 1)[0] not in EDITABLE:
            raise CommandError(f"--set {pair!r}: only {', '.join(k + '.*' for k in EDITABLE)} keys can change here")
    raw = apply_overrides(raw, args.overrides)
    flags = {
        "scales": parse_scales(args.scales) if args.scales is not None else None,
        "samples": args.samples,
        "target_ci": args.target_ci,
        "max_samples": args.max_samples,
        "seed": args.seed,
    }
    if args.deploy is not None:
        flags["deploy"] = parse_deploy(args.deploy)
    raw["eval"] = {**raw.get("eval", {}), **{k: v for k, v in flags.items() if v is not None}}
    return raw


def parse_deploy(text: str) -> list[Any]:
    """`--deploy`: a file or YAML/JSON text with a list (or one mapping) of settings, or names `a,b`."""
    import yaml

    path = Path(text)
    try:
        value = yaml.safe_load(path.read_text() if path.is_file() else text)
    except yaml.YAMLError as err:
        raise CommandError(f"--deploy: not valid YAML/JSON: {str(err).splitlines()[0]}") from None
    if isinstance(value, str):
        return [{"name": name.strip()} for name in value.split(",") if name.strip()]
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [{"name": v} if isinstance(v, str) else v for v in value]
    raise CommandError(f"--deploy {text!r}: expected a list of settings such as [{{name: pcm_time}}] or names")


def run(args: argparse.Namespace) -> int:
    from hardware import format_curve_table, format_setting_table
    from methods import resolve_device, use_threads
    from sweep.config import ConfigError, ExperimentConfig, atomic_write, output_file, validate
    from sweep.experiment import deploy_curves, load_checkpoint, test_curve
    from zoo import build_data

    if args.json:
        output_file(args.json, "--json")
    try:
        model, saved = load_checkpoint(args.checkpoint)
    except (FileNotFoundError, ValueError) as err:
        raise CommandError(str(err)) from None
    cfg = validate(ExperimentConfig, eval_config(saved.model_dump(mode="json"), args))
    try:
        device = resolve_device(args.device)
    except ValueError:
        raise CommandError("--device cuda: CUDA is not available on this machine") from None
    try:
        data = build_data(cfg.data)
    except (FileNotFoundError, ValueError) as err:
        raise ConfigError(f"data: {err}") from None

    threads = use_threads(args.threads)
    curve = test_curve(model.to(device), data, cfg, split=args.split)
    shown = cfg.noise.model_dump(exclude_defaults=True, exclude={"name", "sigma"})
    noise = ", ".join(f"{k}={v}" for k, v in shown.items()) or "defaults"
    print(f"{args.checkpoint}: {cfg.model.name} ({cfg.method.name}) on {cfg.data.name}/{args.split}")
    print(f"noise {cfg.noise.name}: {noise}; {threads} thread(s)")
    print(format_curve_table(curve))
    deployed = deploy_curves(model, data, cfg, args.split, training_curve=curve)
    for result in deployed.values():
        print(f"\n{format_setting_table(result.setting, result.curve)}")
    if args.json:
        payload = {"checkpoint": str(args.checkpoint), "split": args.split, "curve": curve.to_dict()}
        if deployed:
            payload["deploy"] = {key: r.to_dict() for key, r in deployed.items()}
        out = atomic_write(args.json, json.dumps(payload, indent=2))
        print(f"wrote {out}")
    return 0
