"""Cost of one training step of every registered method, relative to the baseline's, next to the
bound its pass count predicts. All numbers come from one run of this script.

A step is forward(s) + backward(s) + optimizer step on a batch of 128: LeNet on digits-shaped
inputs (1x8x8, 10 classes) and ResNet-20 on synthetic CIFAR batches (3x32x32, 10 classes), with
the additive training noise at sigma 0.2, in the layout training uses on CPU (channels_last).
A method declares `passes() == (f, b)`, its forward and backward passes per step in theory
(forwards under no_grad count as full ones).

Bound, nominal cost model: a forward costs 1 unit, a backward 2, so the baseline (1 + 1) costs 3
and the bound is (f + 2b) / 3. Bound, measured cost model: the same with the backward/forward cost
ratio r timed on the baseline in this run, (f + r b) / (1 + r); on tiny inputs (LeNet on 8x8) the
backward is cheaper than a forward, and the nominal model underrates forward-heavy methods.
Time is the process's CPU time (`time.process_time`, all threads), not wall time: on a shared
machine a longer step is preempted more often, which inflated wall-clock ratios of the longer
methods by up to 1.5x here. Methods are timed interleaved (every repeat runs each method twice and times
the second step: the first alone paid for the previous method's cache pollution, up to 1.3x on
LeNet) and the median over repeats is reported. Target: ratio / bound <= 1.2.

glibc's malloc returns large freed blocks to the kernel and page-faults them back on the next
step: that cost 20-25% of a ResNet-20 step in kernel time here, and more for methods that hold
a second graph (adversarial), and it depended on which method ran before. The bench therefore
keeps freed memory (mallopt: mmap threshold 32 MiB, no trimming), so all methods are measured on
warm memory; `--no-keep-memory` measures glibc's default behaviour instead.

One intra-op thread by default: the ratio of compute, not of threading efficiency (the 2-core
machine this was written on is shared).

    python bench/method_cost.py [--threads 1] [--repeats-lenet 150] [--repeats-resnet 5]
"""

from __future__ import annotations

import argparse
import ctypes
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

import hardware
import methods
from hardware import images_to
from methods.train import training_memory_format
from zoo import build_model

SETUPS = {  # label: (model, in_channels, image_size, num_classes)
    "lenet/digits": ("lenet", 1, 8, 10),
    "resnet20/cifar": ("resnet20", 3, 32, 10),
}
FORWARD, BACKWARD = 1, 2  # cost units of one pass
TARGET = 1.2


def keep_freed_memory() -> bool:
    """Tell glibc's malloc to keep freed blocks (no mmap for blocks < 32 MiB, no trimming)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(libc.mallopt(m_mmap_threshold, 32 * 2**20) and libc.mallopt(m_trim_threshold, 2**30))


def cost(passes: tuple[int, int]) -> int:
    return FORWARD * passes[0] + BACKWARD * passes[1]


def as_trained(model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.nn.Module, torch.Tensor]:
    """The model and images in the layout `methods.train` trains them in on CPU (train.memory_format auto)."""
    fmt = training_memory_format(model, torch.device("cpu"), "auto")
    return (model if fmt is None else model.to(memory_format=fmt)), images_to(x, x.device, fmt)


def make_step(name: str, setup: tuple[str, int, int, int], batch: int) -> Callable[[], None]:
    """One full training step of method `name` (a fresh model and Adam, fixed synthetic batch)."""
    model_name, channels, size, classes = setup
    method = methods.METHODS.build(name)
    noise = hardware.noise_model("additive", sigma=0.2)
    torch.manual_seed(0)
    model = method.prepare(build_model(model_name, channels, size, classes)).train()
    model, x = as_trained(model, torch.randn(batch, channels, size, size))  # x: (B, C, H, W)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    y = torch.randint(0, classes, (batch,))  # (B,)

    def step() -> None:
        out = method.step(model, x, y, noise)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()

    return step


def calibration(setup: tuple[str, int, int, int], batch: int) -> dict[str, Callable[[], None]]:
    """The baseline's forward alone and forward + backward, to measure the backward/forward ratio."""
    model_name, channels, size, classes = setup
    torch.manual_seed(0)
    model = build_model(model_name, channels, size, classes).train()
    model, x = as_trained(model, torch.randn(batch, channels, size, size))  # x: (B, C, H, W)
    y = torch.randint(0, classes, (batch,))
    loss = lambda: F.cross_entropy(model(x), y)  # noqa: E731
    return {"_forward": lambda: loss(), "_forward_backward": lambda: loss().backward()}


def median_step_times(setup: tuple[str, int, int, int], batch: int, repeats: int) -> dict[str, float]:
    steps = {name: make_step(name, setup, batch) for name in methods.names()}
    steps.update(calibration(setup, batch))
    for step in steps.values():  # warm-up: allocator, lazy init
        step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            step()  # untimed: a method's caches are warm as in a run of that method alone
            start = time.process_time()
            step()
            times[name].append(time.process_time() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats-lenet", type=int, default=150)
    parser.add_argument("--repeats-resnet", type=int, default=5)
    parser.add_argument("--no-keep-memory", action="store_true", help="leave glibc's malloc at its defaults")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    kept = not args.no_keep_memory and keep_freed_memory()
    repeats = {"lenet/digits": args.repeats_lenet, "resnet20/cifar": args.repeats_resnet}

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), batch {args.batch}, CPU time per step, "
        f"freed memory {'kept' if kept else 'returned (glibc default)'}; nominal cost units: "
        f"forward {FORWARD}, backward {BACKWARD}; target ratio/bound <= {TARGET}"
    )
    header = (
        f"{'setup':<15} {'method':<16} {'fwd+bwd':>8} {'cpu ms':>8} {'ratio':>6} "
        f"{'bound':>6} {'ratio/bound':>11} {'bound(r)':>8} {'ratio/bound(r)':>14}"
    )
    worst = {"nominal": 0.0, "measured": 0.0}
    for label, setup in SETUPS.items():
        times = median_step_times(setup, args.batch, repeats[label])
        t_fwd, t_fb = times.pop("_forward"), times.pop("_forward_backward")
        r = (t_fb - t_fwd) / t_fwd
        print(
            f"\n{label}: {repeats[label]} repeats; baseline forward {t_fwd * 1e3:.1f} ms, "
            f"backward {(t_fb - t_fwd) * 1e3:.1f} ms: measured backward/forward r = {r:.2f}"
        )
        print(header)
        print("-" * len(header))
        for name, seconds in times.items():
            f, b = methods.METHODS.build(name).passes()
            ratio = seconds / times["baseline"]
            nominal = cost((f, b)) / cost((1, 1))
            measured = (f + r * b) / (1 + r)
            worst["nominal"] = max(worst["nominal"], ratio / nominal)
            worst["measured"] = max(worst["measured"], ratio / measured)
            flags = "".join(f" {m}" for m, q in (("OVER", nominal), ("OVER(r)", measured)) if ratio / q > TARGET)
            print(
                f"{label:<15} {name:<16} {f:>3}+{b:<4} {seconds * 1e3:>8.1f} {ratio:>6.2f} {nominal:>6.2f} "
                f"{ratio / nominal:>11.2f} {measured:>8.2f} {ratio / measured:>14.2f}{flags}"
            )
    for model_kind, value in worst.items():
        print(
            f"worst ratio/bound, {model_kind} cost model: {value:.2f} "
            f"({'within' if value <= TARGET else 'above'} the {TARGET} target)"
        )


if __name__ == "__main__":
    main()
