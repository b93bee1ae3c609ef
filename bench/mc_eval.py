"""Monte Carlo evaluation throughput, measured in one run: images x draws per second of

  (a) `hardware.robustness_curve` (both the loop and the batched path; `auto` picks per device),
  (b) the usual research code: deep-copy the model per draw, add noise in a Python loop over its
      parameters, evaluate,
  (c) clean inference of the same images the same number of times (the floor), in the memory
      format (a) runs the model in (channels_last on CPU, see hardware.layout.FAST_MEMORY_FORMAT),
      in the loader's batches; also in the model's own layout (what (b) runs in), and in the chunks
      (a) runs the data in (`hardware.prepare` sizes them to the cache; a/c2 compares with that),
  (d) the peak float32 matmul rate of this machine, and the model's achieved FLOP/s in (a) as a
      fraction of it.

Every variant is timed `--repeats` times, interleaved, and the best time counts (robust to other
load on the machine). The ratios are also given in process CPU time, which other processes on a
busy machine distort less (with --threads 1; with more threads idle OpenMP workers spin).
Ends with one line of JSON: the headline ratios (a/c, a/b, and a/c in CPU time) per model.
Each variant evaluates every scale of `--scales` with the case's draws (default: the noise model's
own scale, 0.1 for a plain model).
Usage: python bench/mc_eval.py [--threads 1] [--device cpu|cuda] [--scales 0.05,0.1,...]
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import hardware  # noqa: E402
from hardware import DEFAULT_PATH, fast_memory_format, images_to, memory_format  # noqa: E402
from zoo import build_model  # noqa: E402

# (label, builder args, input shape, images, batch size, draws)
CASES = [
    ("digits LeNet", ("lenet", 1, 8, 10), (1, 8, 8), 360, 256, 20),  # the digits test split: 360 images
    ("ResNet-20 32x32x3", ("resnet20", 3, 32, 10), (3, 32, 32), 512, 256, 2),
]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[[], object], device: torch.device) -> tuple[float, float]:
    """Wall-clock and process CPU seconds of one call."""
    sync(device)
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    sync(device)
    return time.perf_counter() - start, time.process_time() - cpu


def peak_matmul_flops(device: torch.device, n: int, repeats: int = 5) -> float:
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    torch.mm(a, b)
    return 2 * n**3 / min(timed(lambda: torch.mm(a, b), device)[0] for _ in range(repeats))


def flops_per_image(model: torch.nn.Module, x: torch.Tensor) -> float:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() / len(x)


def research_style(model, batches, sigma: float, draws: int) -> list[float]:
    """What research code usually does: a deep copy per draw, noise added parameter by parameter."""
    accs = []
    for _ in range(draws):
        noisy = copy.deepcopy(model)
        with torch.no_grad():
            for name, p in noisy.named_parameters():
                if name.endswith("weight") and p.dim() > 1:  # conv and linear weights
                    p.add_(torch.randn_like(p) * sigma * p.abs().max())
            correct = sum((noisy(x).argmax(1) == y).sum().item() for x, y in batches)
        accs.append(correct / sum(len(y) for _, y in batches))
    return accs


def clean_inference(model, batches, draws: int, fmt: torch.memory_format | None = None) -> None:
    """Clean forwards of the batches, `draws` times; with `fmt`, in that memory format (as (a) runs)."""
    with torch.no_grad(), memory_format(model, fmt):
        batches = [(images_to(x, x.device, fmt), y) for x, y in batches]
        for _ in range(draws):
            for x, _ in batches:
                model(x)


def clean_engine_chunks(model, batches, draws: int) -> None:
    """Clean forwards in the chunks `hardware.prepare` runs the data in (same layout as (a))."""
    with torch.no_grad(), hardware.prepare(model, batches) as prepared:
        for _ in range(draws):
            for x in prepared.xs:
                model(x)


def bench_case(case, device: torch.device, noise, scales: list[float], repeats: int, peak: float) -> dict[str, float]:
    label, args, shape, images, batch_size, draws = case
    torch.manual_seed(0)
    model = build_model(*args).to(device).eval()
    x = torch.randn(images, *shape, device=device)
    y = torch.randint(0, 10, (images,), device=device)
    batches = [(x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, images, batch_size)]
    forwards = draws * len(scales)  # noisy passes over the images per variant

    def curve(path: str) -> Callable[[], object]:
        return lambda: hardware.robustness_curve(model, batches, noise, scales, draws, seed=0, path=path)

    def research() -> None:
        for sigma in scales:
            research_style(model, batches, sigma, draws)

    fmt = fast_memory_format(model, device) if DEFAULT_PATH.get(device.type, "loop") == "loop" else None
    variants = {
        "clean (c)": lambda: clean_inference(model, batches, forwards, fmt),
        "clean, default layout": lambda: clean_inference(model, batches, forwards),
        "clean, engine chunks": lambda: clean_engine_chunks(model, batches, forwards),
        "ours loop (a)": curve("loop"),
        "ours batched (a)": curve("batched"),
        "research (b)": research,
    }
    for fn in variants.values():  # warm up (oneDNN primitives, allocator)
        fn()
    wall = {name: float("inf") for name in variants}
    cpu = dict(wall)
    for _ in range(repeats):
        for name, fn in variants.items():
            w, c = timed(fn, device)
            wall[name], cpu[name] = min(wall[name], w), min(cpu[name], c)
    rate = {name: images * forwards / t for name, t in wall.items()}
    chosen = DEFAULT_PATH.get(device.type, "loop")
    rate["ours (a)"] = rate[f"ours {chosen} (a)"]
    rate["cpu a/c"] = cpu["clean (c)"] / cpu[f"ours {chosen} (a)"]
    rate["cpu a/c2"] = cpu["clean, engine chunks"] / cpu[f"ours {chosen} (a)"]
    rate["cpu a/b"] = cpu["research (b)"] / cpu[f"ours {chosen} (a)"]
    flops = flops_per_image(model, batches[0][0])
    rate["achieved_flops"] = flops * rate["ours (a)"]
    rate["fraction_of_peak"] = rate["achieved_flops"] / peak
    rate["flops_per_image"] = flops
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=11, help="timed repeats per variant (best counts)")
    parser.add_argument("--noise", default="additive", help="noise model or preset")
    parser.add_argument(
        "--scales",
        default=None,
        help="noise scales of the curve (e.g. the main job's 0.05,0.1,...,0.4: z is drawn once per draw for all)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.noise in hardware.PRESETS:
        noise = hardware.preset(args.noise)
    else:
        noise = hardware.noise_model(args.noise, sigma=0.1)
    scales = [float(v) for v in args.scales.split(",")] if args.scales else [noise.sigma]

    peak = peak_matmul_flops(device, 4096 if device.type == "cuda" else 3072)
    print(
        f"device {device}, {torch.get_num_threads()} threads, torch {torch.__version__}, noise {noise.name},"
        f" scales {scales}"
    )
    print(f"(d) peak float32 matmul: {peak / 1e9:.1f} GFLOP/s; load average before: {load()}")
    print(f"default evaluation path on {device.type}: {DEFAULT_PATH.get(device.type, 'loop')}")
    header = (
        f"{'model':<18} {'(c) clean':>10} {'c default':>10} {'(a) ours':>10} {'loop':>10} {'batched':>10}"
        f" {'(b) research':>12} {'a/c':>6} {'a/c2':>6} {'a/b':>6} {'GFLOP/s':>8} {'of peak':>8} {'cpu a/c':>8}"
        f" {'cpu a/c2':>8} {'cpu a/b':>8}"
    )
    print("images x draws per second (best wall-clock of the repeats); cpu a/c, a/b: ratios of process CPU time")
    print("(c) clean inference in the memory format (a) runs in, in the loader's batches; c default: in the")
    print("model's own layout; a/c2: (a) over clean inference in the chunks (a) runs the data in (hardware.prepare)")
    print(header)
    headline: dict[str, dict[str, float]] = {
        "mc_over_clean": {},
        "mc_over_clean_same_chunks": {},
        "mc_over_research": {},
        "cpu_mc_over_clean": {},
        "cpu_mc_over_clean_same_chunks": {},
    }
    for key, case in zip(("lenet", "resnet20"), CASES, strict=True):
        r = bench_case(case, device, noise, scales, args.repeats, peak)
        headline["mc_over_clean"][key] = round(r["ours (a)"] / r["clean (c)"], 3)
        headline["mc_over_research"][key] = round(r["ours (a)"] / r["research (b)"], 2)
        headline["mc_over_clean_same_chunks"][key] = round(r["ours (a)"] / r["clean, engine chunks"], 3)
        headline["cpu_mc_over_clean"][key] = round(r["cpu a/c"], 3)
        headline["cpu_mc_over_clean_same_chunks"][key] = round(r["cpu a/c2"], 3)
        print(
            f"{case[0]:<18} {r['clean (c)']:>10.0f} {r['clean, default layout']:>10.0f} {r['ours (a)']:>10.0f}"
            f" {r['ours loop (a)']:>10.0f}"
            f" {r['ours batched (a)']:>10.0f} {r['research (b)']:>12.0f}"
            f" {r['ours (a)'] / r['clean (c)']:>6.3f} {r['ours (a)'] / r['clean, engine chunks']:>6.3f}"
            f" {r['ours (a)'] / r['research (b)']:>6.2f}"
            f" {r['achieved_flops'] / 1e9:>8.2f} {r['fraction_of_peak']:>8.1%}"
            f" {r['cpu a/c']:>8.3f} {r['cpu a/c2']:>8.3f} {r['cpu a/b']:>8.2f}"
        )
    print(f"load average after: {load()} (other processes on the machine distort the figures)")
    print(
        json.dumps(
            {
                **headline,
                "device": device.type,
                "threads": torch.get_num_threads(),
                "noise": noise.name,
                "scales": scales,
            }
        )
    )


def load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


if __name__ == "__main__":
    main()
