"""Training methods and the training loop; the public API the sweeps use.

Importing the package registers every training method with `METHODS` (one module per method).
"""

from methods import (  # noqa: F401  (each import registers a method)
    adversarial,
    baseline,
    consistency,
    correctnet,
    dropout,
    lipschitz,
    nft,
    noise_injection,
)
from methods.base import METHODS, Method, StepOutput, TrainContext, Trained
from methods.threads import free_cores, parse_threads, use_threads
from methods.train import Report, TrainResult, TrainState, make_loader, train
from methods.train_config import TrainConfig, resolve_device


def names() -> list[str]:
    """Names of the registered training methods."""
    return METHODS.names()


__all__ = [
    "METHODS",
    "Method",
    "Report",
    "StepOutput",
    "TrainConfig",
    "TrainContext",
    "TrainResult",
    "TrainState",
    "Trained",
    "free_cores",
    "make_loader",
    "names",
    "parse_threads",
    "resolve_device",
    "train",
    "use_threads",
]
