"""Test-time views of the shipped picker: validation F1 when re-tuned for N views, and seconds per micrograph.

Copies the shipped ``cryoem_empiar10017`` checkpoint, sets its ``augment``
(the rotations averaged at test time) and re-tunes threshold, NMS, edge margin
and centre offset on its own training and validation micrographs with
``cryoem.train.tune_checkpoint`` (what ``cryoem train --augment N`` ends with),
then times picking (load, enhance, polarity, network, peaks; warm, median of
two rounds over 6 micrographs) with 1 and with N views. Score the copy on the
held-out micrographs with ``cryoem pick --model COPY`` and ``cryoem evaluate``.

    python benchmarks/cryoem_views.py --views 1 --out /tmp/cryoem_views1.pt
"""

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cryoem" / "empiar10017"


def retune(out: Path, views: int) -> dict:
    """Write the shipped checkpoint with ``views`` test-time views, re-tuned on its own micrographs, to ``out``."""
    from deepscope.core.checkpoint import load_checkpoint, update_checkpoint_meta
    from deepscope.cryoem.train import load_training_item, tune_checkpoint
    from deepscope.registry import resolve_model

    shutil.copy(resolve_model("cryoem_empiar10017", "cryoem"), out)
    meta = load_checkpoint(out)["meta"]
    update_checkpoint_meta(out, augment=views)
    names = [*meta["train_micrographs"], *meta["val_micrographs"]]

    def labels(name):
        path = DATA / "cassper_labels" / f"{name}.png"
        return path if path.exists() else None

    # the shipped model's training command: CryoPPP centres as read, CASSPER labels upside down
    items = [load_training_item(DATA / "micrographs" / f"{n}.jpg", DATA / "particles" / f"{n}.csv", 108,
                                meta["working_diameter"], meta.get("mask_fraction", 0.5), labels(n), False, True)
             for n in names]
    tuning = tune_checkpoint(out, items, [i for i in items if i["name"] in meta["val_micrographs"]])
    return {"views": views, "before": {k: meta.get(k) for k in ("augment", "val_f1", "centre_offset")},
            "after": {k: tuning[k] for k in ("threshold", "nms_fraction", "edge_fraction", "f1", "centre_offset")}}


def seconds_per_micrograph(views: int, paths: list[Path]) -> float:
    """Median over two rounds of the mean seconds per micrograph, picking at 108 px with ``views`` views."""
    from deepscope.cryoem.predictor import Picker
    from deepscope.cryoem.preprocess import load_for_picking

    picker = Picker.from_checkpoint()
    picker.augment = views
    picker.pick(*load_for_picking(paths[0], 108, picker.working_diameter)[:2])  # warm-up
    rounds = []
    for _ in range(2):
        start = time.perf_counter()
        for path in paths:
            image, scale, _ = load_for_picking(path, 108, picker.working_diameter)
            picker.pick(image, scale)
        rounds.append((time.perf_counter() - start) / len(paths))
    return statistics.median(rounds)


def main():
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--views", type=int, default=1, choices=[1, 2, 4, 8])
    parser.add_argument("--out", type=Path, required=True, help="the re-tuned copy of the shipped checkpoint")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(json.dumps(retune(args.out, args.views), default=list))
    paths = sorted((DATA / "micrographs").glob("*.jpg"))[:6]
    for views in sorted({1, args.views, 4}):
        print(f"{views} view(s): {seconds_per_micrograph(views, paths):.3f} s per 4096x4096 micrograph "
              f"({args.threads} threads, warm)")


if __name__ == "__main__":
    main()
