"""Suite-wide settings: one torch thread (the models under test are small; on 2 busy cores one
thread per process is faster and makes timings steadier)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
