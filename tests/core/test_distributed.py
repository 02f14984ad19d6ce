"""Torch CPU threads as every --threads sets them."""

import torch

from deepscope.core.distributed import set_torch_threads


def test_set_torch_threads_sets_n_and_zero_or_none_leaves_them():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        for keep in (0, None):
            set_torch_threads(keep)
            assert torch.get_num_threads() == 2
        set_torch_threads(1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
