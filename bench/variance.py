"""Draws needed for a paired comparison of two trained methods, with and without variance reduction.

Trains two digits LeNets (`--methods`, a few epochs each, training seed `--seed`; the main job's
settings otherwise) and evaluates both on the digits test split under additive noise at each scale
with N Monte Carlo draws per scheme:

  independent    each model with its own draws (different eval seeds): Var = Var(a) + Var(b) per draw
  crn            common random numbers (draw k the same z for both): Var(a_k - b_k) per draw
  crn_anti       CRN with antithetic pairs (z, -z): Var(pair mean of a - b) per pair = 2 draws
  cond           CRN, each draw's accuracy averaged analytically over the output layer's noise
                 (`conditional`, hardware/conditional.py)
  cond_anti      cond with antithetic pairs
  cond_cv        cond with the linearized-margin control variate (`control`, hardware/control.py):
                 `hardware.paired_differences` (the default of `hardware.robustness_curve`)
  cond_cv_anti   cond_cv with antithetic pairs

The factor of a scheme is how many times fewer draws it needs than independent draws for the same
95% CI half-width of the paired difference (asymptotically: the ratio of the variances per draw),
printed per scale. The cost of the control variate is measured side by side: CPU time of the
curves with and without it, alternated (`--repeats`), its set-up (Jacobian + randomized SVD) on its
own, and the draws alone (curve with it minus set-up, over the curve without). The last line is
JSON with the headline figures (`draw_factor`: the default estimator at the headline scale,
`draw_factor_min`: its lowest over the scales; target 4x). One intra-op thread by default.

    python bench/variance.py [--epochs 10] [--draws 200] [--scales 0.1,0.2,0.3] [--seed 0]
                             [--methods baseline,noise_injection]
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
from hardware.control import margin_control  # noqa: E402
from methods import make_loader  # noqa: E402
from sweep.config import ExperimentConfig  # noqa: E402
from sweep.experiment import run_training  # noqa: E402
from zoo import build_data  # noqa: E402

SCHEMES = {  # name: curve options
    "crn": {"conditional": False, "control": False},
    "crn_anti": {"conditional": False, "control": False, "antithetic": True},
    "cond": {"control": False},
    "cond_anti": {"control": False, "antithetic": True},
    "cond_cv": {},
    "cond_cv_anti": {"antithetic": True},
}
DEFAULT = "cond_cv"


def per_draw(a: hardware.CurvePoint, b: hardware.CurvePoint) -> float:
    """Variance of the paired difference per draw (per pair / 2 with antithetic draws)."""
    d = hardware.paired_differences(a, b)
    if a.antithetic:
        return 2 * statistics.variance([(u + v) / 2 for u, v in zip(d[::2], d[1::2], strict=True)])
    return statistics.variance(d)


def cost(prepared: hardware.Prepared, noise: hardware.NoiseModel, scales: list[float], repeats: int) -> dict:
    """CPU time of a curve with the control variate over one without (alternated), and its set-up."""
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(repeats):
        for control in (False, True):
            start = time.thread_time()
            prepared.curve(noise, scales, 50, 99, control=control)
            times[control].append(time.thread_time() - start)
    form = prepared.deployed.flat_form(noise)
    start = time.thread_time()
    margin_control(prepared, noise, form, cond=prepared.head is not None)
    setup = time.thread_time() - start
    plain, with_cv = statistics.median(times[False]), statistics.median(times[True])
    return {
        "curve_ratio": round(with_cv / plain, 3),
        "draws_ratio": round((with_cv - setup) / plain, 3),
        "setup_s": round(setup, 3),
        "curve_s": round(plain, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--draws", type=int, default=200, help="draws per model, scale and scheme (even)")
    parser.add_argument("--scales", default="0.1,0.2,0.3")
    parser.add_argument("--headline-scale", type=float, default=0.2)
    parser.add_argument("--methods", default="baseline,noise_injection", help="two method names")
    parser.add_argument("--seed", type=int, default=0, help="training seed of both models")
    parser.add_argument("--repeats", type=int, default=3, help="alternated timings of the control variate")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if args.draws < 6 or args.draws % 2:
        parser.error(f"--draws must be an even number >= 6 (got {args.draws})")
    methods = args.methods.split(",")
    if len(methods) != 2:
        parser.error(f"--methods must name two methods (got {args.methods!r})")
    scales = [float(s) for s in args.scales.split(",")]
    torch.set_num_threads(args.threads)

    start = time.perf_counter()
    models, data = [], None
    for name in methods:
        cfg = ExperimentConfig.model_validate(
            {
                "method": {"name": name},
                "train": {"epochs": args.epochs, "device": "cpu"},
                "eval": {"seed": 1234},
                "seed": args.seed,
            }
        )
        data = data if data is not None else build_data(cfg.data)
        models.append(run_training(cfg, data).model.eval())
    took = time.perf_counter() - start
    print(f"trained {', '.join(methods)} (seed {args.seed}) for {args.epochs} epochs in {took:.1f} s")
    noise = hardware.noise_model("additive")
    loader = make_loader(data.test, 256, shuffle=False)

    points: dict[str, list[list[hardware.CurvePoint]]] = {}
    costs = []
    for model in models:
        with hardware.prepare(model, loader) as prepared:
            for scheme, options in SCHEMES.items():
                curve = prepared.curve(noise, scales, args.draws, 1234, **options)
                points.setdefault(scheme, []).append(curve.points)
            other = prepared.curve(noise, scales, args.draws, 4321, conditional=False, control=False).points
            costs.append(cost(prepared, noise, scales, args.repeats))
    (a_crn, b_crn), b_other = points["crn"], other

    print(f"{args.draws} draws per model, scale and scheme; {methods[0]} - {methods[1]} on the digits test split")
    print("factor: Var(independent) / Var(scheme) of the paired difference per draw (draws saved)")
    print(f"{'scale':>6} {'mean a':>7} {'mean b':>7} {'indep.':>9}" + "".join(f" {s:>12}" for s in SCHEMES))
    factors: dict[str, dict[str, float]] = {s: {} for s in SCHEMES}
    for i, scale in enumerate(scales):
        independent = statistics.variance(a_crn[i].accuracies) + statistics.variance(b_other[i].accuracies)
        row = f"{scale:>6g} {100 * a_crn[i].mean:>7.2f} {100 * b_crn[i].mean:>7.2f} {independent:>9.2e}"
        for scheme, (a, b) in points.items():
            factors[scheme][f"{scale:g}"] = round(independent / per_draw(a[i], b[i]), 2)
            row += f" {factors[scheme][f'{scale:g}']:>12.2f}"
        print(row)
    for i, scale in enumerate(scales):
        a, b = points[DEFAULT][0][i], points[DEFAULT][1][i]
        d = hardware.paired_differences(a, b)
        plain = [x - y for x, y in zip(a_crn[i].accuracies, b_crn[i].accuracies, strict=True)]
        mean, half = hardware.mean_ci95(d)
        ref, ref_half = hardware.mean_ci95(plain)
        print(
            f"scale {scale:g}: difference {100 * mean:+.2f} +- {100 * half:.2f}% ({DEFAULT}),"
            f" {100 * ref:+.2f} +- {100 * ref_half:.2f}% (crn)"
        )
    for name, c in zip(methods, costs, strict=True):
        print(
            f"control variate cost, {name}: curve CPU time x{c['curve_ratio']:.3f} (median of {args.repeats},"
            f" {len(scales)} scales x 50 draws, {c['curve_s']:.2f} s without), set-up {c['setup_s']:.3f} s,"
            f" the draws alone x{c['draws_ratio']:.3f}"
        )
    key = f"{args.headline_scale:g}"
    print(
        json.dumps(
            {
                "draw_factor": factors[DEFAULT].get(key),
                "draw_factor_min": min(factors[DEFAULT].values()),
                "scale": args.headline_scale,
                "per_scale": factors,
                "control_cost": {name: c for name, c in zip(methods, costs, strict=True)},
                "methods": methods,
                "seed": args.seed,
                "draws": args.draws,
                "epochs": args.epochs,
            }
        )
    )


if __name__ == "__main__":
    main()
