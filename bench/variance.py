"""Draws needed for a paired comparison of two trained methods, with and without variance reduction.

Trains two digits LeNets (`baseline` and `noise_injection`, a few epochs each; both with the main
job's settings otherwise) and evaluates both on the digits test split under additive noise at each
scale with N Monte Carlo draws three ways:

  independent  each model with its own draws (different eval seeds): Var = Var(a) + Var(b) per draw
  CRN          common random numbers (draw k the same z for both): Var(a_k - b_k) per draw
  CRN + anti   CRN with antithetic pairs (z, -z) (`antithetic=True`): the difference's pair means are
               independent, Var(pair mean) per pair = 2 draws
  CRN + cond   CRN with each draw's accuracy averaged analytically over the output layer's noise
               (`conditional=True`, the default of `hardware.robustness_curve`; Rao-Blackwell)

The factor is how many times fewer draws a method needs than independent draws for the same 95% CI
half-width of the paired difference (asymptotically: the ratio of the variances per draw), printed
per scale; the last line is JSON with the headline figures (`draw_factor`: the default estimator at
the headline scale; target 4x). One intra-op thread.

    python bench/variance.py [--epochs 10] [--draws 200] [--scales 0.1,0.2,0.3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import hardware  # noqa: E402
from methods import make_loader  # noqa: E402
from sweep.config import ExperimentConfig  # noqa: E402
from sweep.experiment import run_training  # noqa: E402
from zoo import build_data  # noqa: E402

METHODS = ("baseline", "noise_injection")


def per_draw(values: list[float]) -> float:
    return statistics.variance(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--draws", type=int, default=200, help="draws per model, scale and scheme (even)")
    parser.add_argument("--scales", default="0.1,0.2,0.3")
    parser.add_argument("--headline-scale", type=float, default=0.2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if args.draws < 4 or args.draws % 2:
        parser.error(f"--draws must be an even number >= 4 (got {args.draws})")
    scales = [float(s) for s in args.scales.split(",")]
    torch.set_num_threads(args.threads)

    start = time.perf_counter()
    models = {}
    data = None
    for name in METHODS:
        cfg = ExperimentConfig.model_validate(
            {"method": {"name": name}, "train": {"epochs": args.epochs, "device": "cpu"}, "eval": {"seed": 1234}}
        )
        data = data if data is not None else build_data(cfg.data)
        models[name] = run_training(cfg, data).model.eval()
    print(f"trained {', '.join(METHODS)} for {args.epochs} epochs in {time.perf_counter() - start:.1f} s")
    noise = hardware.noise_model("additive")
    loader = make_loader(data.test, 256, shuffle=False)

    def accs(model: torch.nn.Module, seed: int, **options: bool) -> list[list[float]]:
        with hardware.prepare(model, loader) as prepared:
            curve = prepared.curve(noise, scales, args.draws, seed, **options)
        return [p.accuracies for p in curve.points]

    a, b = models.values()
    plain = {"conditional": False}
    plain_a, plain_b, other_b = accs(a, 1234, **plain), accs(b, 1234, **plain), accs(b, 4321, **plain)
    anti_a, anti_b = accs(a, 1234, antithetic=True, **plain), accs(b, 1234, antithetic=True, **plain)
    cond_a, cond_b = accs(a, 1234), accs(b, 1234)  # the default estimator

    print(f"{args.draws} draws per model, scale and scheme; {METHODS[0]} - {METHODS[1]} on the digits test split")
    print("variance of the difference per draw, and the factor: independent / scheme (draws saved)")
    print(
        f"{'scale':>6} {'mean a':>7} {'mean b':>7} {'indep.':>9} {'CRN':>9} {'CRN+anti':>9} {'CRN+cond':>9}"
        f" {'CRN x':>6} {'anti x':>7} {'cond x':>7} {'CI95 cond':>9}"
    )
    factors: dict[str, dict[str, float]] = {"crn": {}, "crn_antithetic": {}, "crn_conditional": {}}
    for i, scale in enumerate(scales):
        independent = per_draw(plain_a[i]) + per_draw(other_b[i])
        crn = per_draw([x - y for x, y in zip(plain_a[i], plain_b[i], strict=True)])
        d = [x - y for x, y in zip(anti_a[i], anti_b[i], strict=True)]
        pair_means = [(u + v) / 2 for u, v in zip(d[::2], d[1::2], strict=True)]
        crn_anti = 2 * per_draw(pair_means)  # a pair costs two draws
        d_cond = [x - y for x, y in zip(cond_a[i], cond_b[i], strict=True)]
        crn_cond = per_draw(d_cond)
        half_width = hardware.mean_ci95(d_cond)[1]
        for key, var in (("crn", crn), ("crn_antithetic", crn_anti), ("crn_conditional", crn_cond)):
            factors[key][f"{scale:g}"] = round(independent / var, 2)
        print(
            f"{scale:>6g} {100 * statistics.mean(plain_a[i]):>7.2f} {100 * statistics.mean(plain_b[i]):>7.2f}"
            f" {independent:>9.2e} {crn:>9.2e} {crn_anti:>9.2e} {crn_cond:>9.2e} {independent / crn:>6.2f}"
            f" {independent / crn_anti:>7.2f} {independent / crn_cond:>7.2f} {100 * half_width:>8.2f}%"
        )
    key = f"{args.headline_scale:g}"
    print(
        json.dumps(
            {
                "draw_factor": factors["crn_conditional"].get(key),
                "draw_factor_crn": factors["crn"].get(key),
                "draw_factor_crn_antithetic": factors["crn_antithetic"].get(key),
                "scale": args.headline_scale,
                "per_scale": factors,
                "draws": args.draws,
                "epochs": args.epochs,
            }
        )
    )


if __name__ == "__main__":
    main()
