"""`sweep train CONFIG`: one training run without Ray; writes a checkpoint and a metrics JSON."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from sweep.commands import CommandError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train one model from a config (no Ray)")
    parser.add_argument("config", help="experiment YAML, e.g. configs/digits.yaml")
    add_set_argument(parser)
    parser.add_argument("--out", help="output folder (default: out/train/<config>-<time>)")
    parser.add_argument("--overwrite", action="store_true", help="replace a checkpoint already in --out")
    add_threads_argument(parser)
    parser.set_defaults(func=run)


def threads_value(text: str) -> int | None:
    from methods import parse_threads

    try:
        return parse_threads(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a positive integer (got {text!r})") from None


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads", type=threads_value, default=None, metavar="N|auto",
        help="torch threads (default auto: the cores not busy with other work, by the load average)",
    )  # fmt: skip


def add_set_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set train.epochs=5 --set method.name=noise_injection",
    )


def output_folder(out: str | None, config: str, overwrite: bool) -> Path:
    from sweep.experiment import MODEL_FILE

    if out is None:
        return Path("out") / "train" / f"{Path(config).stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    from sweep.config import output_folder as checked

    folder = checked(out, "--out")
    if (folder / MODEL_FILE).exists() and not overwrite:
        raise CommandError(f"--out {folder} already holds a checkpoint; pick another folder or pass --overwrite")
    return folder


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from hardware import format_curve_table
    from methods import use_threads
    from sweep.config import ConfigError, atomic_write, load_config
    from sweep.experiment import MODEL_FILE, clean_test_accuracy, run_training, save_checkpoint, test_curve
    from zoo import build_data, data_shape

    cfg = load_config(args.config, args.overrides)
    folder = output_folder(args.out, args.config, args.overwrite)
    try:
        data = build_data(cfg.data)
    except (FileNotFoundError, ValueError) as err:
        raise ConfigError(f"data: {err}") from None

    threads = use_threads(args.threads)
    console = Console()
    console.print(
        f"[bold]{cfg.method.name}[/] on {cfg.data.name} with {cfg.model.name}, "
        f"training noise {cfg.noise.name} sigma={cfg.noise.sigma}, {cfg.train.epochs} epochs, "
        f"{threads} thread(s) -> {folder}"
    )

    def report(metrics: dict[str, float], state: object) -> None:
        console.print(
            f"epoch {metrics['epoch']:>3}/{cfg.train.epochs}  loss {metrics['train_loss']:.4f}  "
            f"train {metrics['train_acc']:.4f}  val {metrics['val_acc']:.4f}  "
            f"val@{cfg.noise.sigma:g} {metrics['val_noisy_acc']:.4f}  {metrics['epoch_time']:.1f}s"
        )

    start = time.perf_counter()
    with console.status("training…"):
        result = run_training(cfg, data, report=report)
    train_seconds = time.perf_counter() - start
    with console.status("robustness curve on the test split…"):
        curve = test_curve(result.model, data, cfg)

    save_checkpoint(folder / MODEL_FILE, result.model, cfg, data_shape(data))
    metrics = {
        "test_acc": clean_test_accuracy(result.model, data, cfg, curve),
        "train_seconds": train_seconds,
        "history": result.history,
        "curve": curve.to_dict(),
        "config": cfg.model_dump(mode="json"),
        "method_summary": result.summary,
    }
    atomic_write(folder / "metrics.json", json.dumps(metrics, indent=2))
    console.print(format_curve_table(curve))
    console.print(f"[bold]test accuracy {metrics['test_acc']:.4f}[/] (clean weights); trained in {train_seconds:.1f}s")
    console.print(f"wrote {folder / MODEL_FILE} and {folder / 'metrics.json'}")
    return 0
