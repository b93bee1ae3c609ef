"""Training methods, models, data sets and the training loop.

Importing the package registers every training method with `METHODS` (one module per method).
"""

from methods.torchvision_compat import import_torchvision

import_torchvision()  # once, before any submodule imports torchvision (see torchvision_compat)

from methods import (  # noqa: E402, F401  (each import registers a method)
    adversarial,
    baseline,
    consistency,
    correctnet,
    dropout,
    lipschitz,
    nft,
    noise_injection,
)
from methods.base import METHODS, Method, StepOutput  # noqa: E402


def names() -> list[str]:
    """Names of the registered training methods."""
    return METHODS.names()


__all__ = ["METHODS", "Method", "StepOutput", "names"]
