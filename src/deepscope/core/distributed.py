"""DDP set-up straight from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK).

Without those variables everything runs as a single process (rank 0 of 1).
"""

import os
from dataclasses import dataclass

from deepscope.errors import InputError


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in a (possibly single-process) run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_primary(self):
        """Only the primary rank logs and writes files."""
        return self.rank == 0

    @property
    def enabled(self):
        """Whether a process group spans several processes."""
        return self.world_size > 1


def init_distributed(device):
    """Join the torchrun process group if launched by torchrun.

    Parameters
    ----------
    device : torch.device
        Gloo is used on CPU, NCCL on CUDA.

    Returns
    -------
    DistInfo
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    return DistInfo(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")))


def shutdown_distributed(info):
    """Leave the process group (no-op for a single process)."""
    if info.enabled:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def select_device(name, local_rank=0):
    """Resolve a device name, failing loudly when CUDA is asked for and absent.

    Parameters
    ----------
    name : str
        ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    local_rank : int
        Under torchrun, ``"cuda"`` means this process's local GPU.

    Returns
    -------
    torch.device

    Raises
    ------
    InputError
        If CUDA is requested but not available.
    """
    import torch

    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            msg = f"device {name!r} requested but CUDA is not available on this machine; use --device cpu"
            raise InputError(msg)
        return torch.device(f"cuda:{local_rank}" if name == "cuda" else name)
    if name != "cpu":
        msg = f"unknown device {name!r}; use cpu, cuda or cuda:N"
        raise InputError(msg)
    return torch.device("cpu")
