"""DDP set-up straight from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK).

Without those variables everything runs as a single process (rank 0 of 1).
"""

import atexit
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


def process_info():
    """This process's place in the run, read from torchrun's environment.

    Unlike :func:`init_distributed` this joins no process group, so it is
    cheap enough to call before loading data (to keep the other ranks quiet).

    Returns
    -------
    DistInfo
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    return DistInfo(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")))


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
    info = process_info()
    if not info.enabled:
        return info
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
        # One group for the whole process, left at exit: a command that
        # trains twice (spectra: autoencoder, then classifier) must not tear
        # it down and rendezvous again, which can hang under torchrun.
        atexit.register(_leave_process_group)
    return info


def _collective(info, values, device, operation):
    """Run an in-place collective on a few numbers (identity for a single process)."""
    if not info.enabled:
        return list(values)
    import torch

    tensor = torch.tensor(list(values), dtype=torch.float64, device=device)
    operation(tensor)
    return tensor.tolist()


def sum_over_ranks(info, values, device):
    """Sum a few numbers over all ranks (identity for a single process).

    Parameters
    ----------
    info : DistInfo
    values : sequence of float
    device : torch.device
        Where the collective runs (CPU for gloo, this rank's GPU for NCCL).

    Returns
    -------
    list of float
    """
    import torch.distributed as dist

    return _collective(info, values, device, dist.all_reduce)


def from_primary(info, values, device):
    """Every rank gets the primary rank's numbers (identity for a single process).

    Decisions taken from them (early stopping, best epoch) are then the same
    on every rank; a rank that decided differently would wait forever in the
    next collective.

    Parameters
    ----------
    info : DistInfo
    values : sequence of float
        Only the primary rank's values matter; the others pass placeholders
        of the same length.
    device : torch.device

    Returns
    -------
    list of float
    """
    import torch.distributed as dist

    return _collective(info, values, device, lambda tensor: dist.broadcast(tensor, src=0))


def sync_buffers(info, module):
    """Copy the primary rank's buffers (batch-norm statistics) to every rank.

    DDP averages gradients, so parameters stay identical, but each rank
    updates its running statistics from its own batches; without this the
    replicas drift apart in everything that is not a parameter.

    Parameters
    ----------
    info : DistInfo
    module : torch.nn.Module
        The unwrapped model.
    """
    if not info.enabled:
        return
    import torch.distributed as dist

    for buffer in module.buffers():
        dist.broadcast(buffer, src=0)


def check_in_sync(info, module, device):
    """Fail if the replicas' parameters or buffers differ (a DDP invariant).

    Parameters
    ----------
    info : DistInfo
    module : torch.nn.Module
    device : torch.device

    Raises
    ------
    RuntimeError
        If some rank's weights differ from the primary's.
    """
    if not info.enabled:
        return
    import torch

    tensors = list(module.parameters()) + list(module.buffers())
    mine = [float(torch.cat([t.detach().double().flatten() for t in tensors]).sum()) if tensors else 0.0]
    primary = from_primary(info, mine, device)
    differs = sum_over_ranks(info, [float(mine != primary)], device)[0]
    if differs:
        msg = f"DDP replicas diverged: {int(differs)} rank(s) hold weights that differ from rank 0's"
        raise RuntimeError(msg)


def barrier(info):
    """Wait until every rank gets here (no-op for a single process)."""
    if info.enabled:
        import torch.distributed as dist

        dist.barrier()


def _leave_process_group():
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


def set_torch_threads(threads):
    """Use ``threads`` torch CPU threads in this process.

    Parameters
    ----------
    threads : int or None
        0 or None keeps torch's default (all cores), as every ``--threads 0`` promises.
    """
    if threads:
        import torch

        torch.set_num_threads(threads)
