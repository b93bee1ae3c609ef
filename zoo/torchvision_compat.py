"""Import torchvision even where its C++ operators cannot load.

PyPI's torchvision wheels are built against CUDA torch; next to a CPU-only torch their `_C`
extension fails to load and `import torchvision` then dies registering fake kernels for operators
(nms, roi_align, ...) that do not exist. noisesweep uses only torchvision's pure-Python parts
(data sets, transforms, the ResNet-18 definition), so in that case we import it again with those
registrations made forgiving. With a matching torchvision this is a plain import.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from typing import Any

import torch


def _forgiving(register: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap torch.library.register_* so a missing torchvision operator is skipped, not fatal."""

    def wrapper(op: Any, *args: Any, **kwargs: Any) -> Any:
        if args and callable(args[0]):
            try:
                return register(op, *args, **kwargs)
            except RuntimeError:
                return args[0]
        decorator = register(op, *args, **kwargs)

        def apply(fn: Callable[..., Any]) -> Callable[..., Any]:
            try:
                return decorator(fn)
            except RuntimeError:
                return fn

        return apply

    return wrapper


def import_torchvision() -> types.ModuleType:
    try:
        import torchvision

        return torchvision
    except RuntimeError as err:
        if "torchvision::" not in str(err):
            raise
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    originals = {attr: getattr(torch.library, attr) for attr in ("register_fake", "register_autograd")}
    for attr, original in originals.items():
        setattr(torch.library, attr, _forgiving(original))
    try:
        import torchvision
    finally:
        for attr, original in originals.items():
            setattr(torch.library, attr, original)
    return torchvision
