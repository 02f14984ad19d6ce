"""Train several classifiers apart and ship them as one averaging ensemble.

One CNN's held-out scores move with its seed (MILES held out: luminosity
class 0.801, 0.801 and 0.738 for seeds 0, 1, 2); averaging the members'
probabilities takes out much of that spread. Members differ in seed, so in
initial weights, batch order and validation split.
"""

import dataclasses
from pathlib import Path

from deepscope.errors import InputError
from deepscope.spectra.task import DEFAULT_CONFIG, train_classifier, trained_model_kwargs

# Chosen on the development libraries (MILES and Pickles held out); see the spectra README.
DEFAULT_MEMBERS = 3
ENSEMBLE_MODEL = "spectra_ensemble"


def member_dir(run_dir, index):
    """Run directory of one member inside an ensemble's run directory."""
    return Path(run_dir) / f"member{index}"


def check_members(members):
    """Refuse an ensemble size below one (:class:`InputError`), before any work."""
    if members < 1:
        msg = f"--members {members}: need at least one"
        raise InputError(msg)


def train_ensemble(x, sptypes, run_dir, config=DEFAULT_CONFIG, members=DEFAULT_MEMBERS, **train_kwargs):
    """Train ``members`` classifiers and write their ensemble to ``run_dir/best.pt``.

    Member ``i`` trains in ``run_dir/member<i>`` with seed ``config.seed + i``;
    the ensemble checkpoint keeps the first member's metadata (grid,
    templates, training hashes). One member trains straight into ``run_dir``.

    Parameters
    ----------
    x : numpy.ndarray
        Prepared labelled spectra.
    sptypes : sequence of str
    run_dir : str or Path
    config : deepscope.config.TrainConfig
    members : int
    **train_kwargs
        Passed to :func:`deepscope.spectra.task.train_classifier`.

    Returns
    -------
    list of deepscope.core.trainer.FitResult
        One per member.

    Raises
    ------
    InputError
        If ``members`` is below one.
    """
    check_members(members)
    if members == 1:
        return [train_classifier(x, sptypes, run_dir, config, **train_kwargs)]
    results = [train_classifier(x, sptypes, member_dir(run_dir, i), dataclasses.replace(config, seed=config.seed + i),
                                **train_kwargs)
               for i in range(members)]
    _write_ensemble(run_dir, members)
    return results


def _write_ensemble(run_dir, members):
    """Join the members' best checkpoints into ``run_dir/best.pt`` (primary process only)."""
    from deepscope.core.checkpoint import BEST_NAME, load_checkpoint, save_checkpoint
    from deepscope.core.distributed import process_info
    from deepscope.registry import create_model

    if not process_info().is_primary:
        return
    records = [load_checkpoint(member_dir(run_dir, i)) for i in range(members)]
    specs = [(r["model"], trained_model_kwargs(r["model_kwargs"])) for r in records]
    ensemble = create_model(ENSEMBLE_MODEL, members=specs)
    for slot, record in zip(ensemble.members, records):
        slot.load_state_dict(record["state_dict"])
    save_checkpoint(Path(run_dir) / BEST_NAME, ENSEMBLE_MODEL, {"members": specs}, ensemble,
                    meta=records[0].get("meta", {}), config=records[0].get("config"),
                    member_best_scores=[r.get("best_score") for r in records])
