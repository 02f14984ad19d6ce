"""Join classifiers trained apart into one averaging ensemble checkpoint.

One CNN's held-out scores move with its seed (MILES held out: luminosity
class 0.801, 0.801 and 0.738 for seeds 0, 1, 2); averaging the members'
probabilities takes out much of that spread. Members differ in seed, so in
initial weights, batch order and validation split;
:func:`deepscope.spectra.train.train_ensemble` trains them.
"""

from __future__ import annotations

from pathlib import Path

from deepscope.errors import InputError

# Chosen on the development libraries (MILES and Pickles held out); see the spectra README.
DEFAULT_MEMBERS = 3
ENSEMBLE_MODEL = "spectra_ensemble"


def member_dir(run_dir: str | Path, index: int) -> Path:
    """Run directory of one member inside an ensemble's run directory."""
    return Path(run_dir) / f"member{index}"


def check_members(members: int) -> None:
    """Refuse an ensemble size below one, before any work.

    Raises
    ------
    InputError

    Examples
    --------
    >>> check_members(0)
    Traceback (most recent call last):
    ...
    deepscope.errors.InputError: --members 0: need at least one
    """
    if members < 1:
        msg = f"--members {members}: need at least one"
        raise InputError(msg)


def write_ensemble(run_dir: str | Path, members: int) -> None:
    """Join the members' best checkpoints into ``run_dir/best.pt`` (primary process only)."""
    from deepscope.core.checkpoint import BEST_NAME, load_checkpoint, save_checkpoint
    from deepscope.core.distributed import process_info
    from deepscope.registry import create_model
    from deepscope.spectra.models import trained_model_kwargs

    if not process_info().is_primary:
        return
    records = [load_checkpoint(member_dir(run_dir, i)) for i in range(members)]
    specs = [(r["model"], trained_model_kwargs(r["model_kwargs"])) for r in records]
    ensemble = create_model(ENSEMBLE_MODEL, members=specs)
    for slot, record in zip(ensemble.members, records):
        slot.load_state_dict(record["state_dict"])
    save_checkpoint(Path(run_dir) / BEST_NAME, ENSEMBLE_MODEL, {"members": specs}, ensemble,
                    meta={k: v for k, v in records[0].get("meta", {}).items() if k != "temperature"},
                    config=records[0].get("config"),
                    member_best_scores=[r.get("best_score") for r in records])
