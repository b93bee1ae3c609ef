"""Helpers shared by several training methods (and the training loop): one home each."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn


@contextmanager
def frozen_batchnorm_stats(model: nn.Module) -> Iterator[None]:
    """Inside, BatchNorm layers in train mode still normalize with the batch statistics but do not
    update their running statistics (nor `num_batches_tracked`): for auxiliary forwards."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    norms = [m for m in norms if m.track_running_stats]
    try:
        for m in norms:
            m.track_running_stats = False
        yield
    finally:
        for m in norms:
            m.track_running_stats = True


def kl_divergence(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """KL(softmax(p) || softmax(q)) of logits (B, classes), averaged over the batch."""
    log_p, log_q = F.log_softmax(p_logits, 1), F.log_softmax(q_logits, 1)  # (B, classes)
    return F.kl_div(log_q, log_p, reduction="batchmean", log_target=True)
