"""Bar networks trained with external evidence or a teacher: validation figures, wall time, network speed.

Experiment, not shipped (see README.md here and ../galaxy_distillation/README.md);
was benchmarks/galaxy_evidence_training.py, with the training variants that were
`galaxy train --hoyle/--stripe82/--confirmed-weight/--doubtful-weight/--match-radius`
and `--teacher/--teacher-weight`.

Trains one recipe (network, evidence weights, teacher, epochs) on the non-test rows
of sdss_gz2_bars with the package's `read_training_data` and `fit_galaxy`
(deepscope.galaxy.train) and this folder's `evidence.py`, then measures
the best checkpoint on the *validation* rows only, with the product's own
`galaxy evaluate` (GZ2 labels, size-matched subset, Hoyle recall, Stripe 82),
so recipes, epochs and thresholds are chosen without looking at the test
split. It also prints the figures at a second threshold: the lowest one
that keeps validation unbarred recall >= --unbarred-recall (the shipped
model's test figure), since the issue's bar keeps unbarred recall.

--speed times the networks alone (BatchNorm folded, channels-last, one
thread, as `galaxy predict` runs them) interleaved, so load hits them alike.

Measured on the shared 2-core machine (seed 0, --threads 1, nice 10, other jobs running; validation
rows = the training run's own 638; shipped galaxy_bars: barnet, 70-epoch schedule, no evidence):

  run                          epochs  wall   val AUC  size-matched val AUC / acc  Hoyle val recall
  shipped galaxy_bars          70      -      0.903    0.884 / 0.789               0.967
  barnet_fast, no evidence     30      20 m   0.855    0.827 / 0.751               0.911
  barnet_fast + evidence       30      15 m   0.869    0.843 / 0.759               0.956
  barnet, no evidence          30      15 m   0.871    0.837 / 0.768               0.956
  barnet + evidence            30      29 m   0.861    0.832 / 0.768               0.922
  barnet_fast + evidence       60      30 m   0.893    0.884 / 0.797               0.944
  barnet + evidence (2 threads) 60     13 m   0.895    0.882 / 0.805               0.967
  barnet_fast + evidence (2 thr.) 100  14 m   0.908    0.900 / 0.805               0.967
  the same + --teacher galaxy_bars 0.5 100  17 m   0.905    0.885 / 0.795         0.944

(the 100-epoch run, idle machine, best at epoch 70, beat the shipped model on every validation figure, so
its test split was scored once: ROC-AUC 0.896 against 0.903, size-matched 0.788 / 0.880, Hoyle bars
found 94.7% against 97.0%: outside the issue's 0.005 and under 0.95, not shipped. Distilled from the
shipped barnet, the same run was worse on validation, so its test split was not scored.)

(accuracies at each run's balanced-accuracy threshold; wall times depend on the other jobs.)

usage:
  nice -n 10 python experiments/galaxy_evidence/train_variant.py --out runs/fast_ev --arch barnet_fast --evidence
  nice -n 10 python experiments/galaxy_evidence/train_variant.py --out runs/fast_plain --arch barnet_fast
  python experiments/galaxy_evidence/train_variant.py --out runs/fast_distil --arch barnet_fast --evidence \
      --teacher galaxy_bars --epochs 100 --patience 100 --threads 2
  python experiments/galaxy_evidence/train_variant.py --out val_shipped --measure galaxy_bars
  python experiments/galaxy_evidence/train_variant.py --speed
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from deepscope.galaxy.dataset import CutoutDataset

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "galaxy_distillation")]
ROOT = HERE.parents[2] / "shared" / "data" / "galaxy"
LABELS = ROOT / "sdss_gz2_bars" / "labels.csv"
HOYLE = ROOT / "external_bar_labels" / "hoyle2011_bar_lengths.csv"
STRIPE82 = ROOT / "external_bar_labels" / "willett2013_table5_stripe82.csv.gz"


def validation_labels(out_dir, config):
    """labels.csv with the training run's own validation rows marked split == val (absolute paths)."""
    from deepscope.core.manifest import manifest_from_labels, split_train_val

    manifest = manifest_from_labels(LABELS, "file", required=["barred"])
    _, val = split_train_val(manifest, config.val_fraction, config.seed, stratify="barred")
    table = val.drop(columns=["path", "id"]).assign(file=val["path"].map(str), split="val")
    path = Path(out_dir) / "val_labels.csv"
    table.to_csv(path, index=False)
    return path


def figures(y, p, threshold, sizes, size_matched):
    """Headline figures of one decision threshold."""
    pred = (p >= threshold).astype(int)

    def rate(mask):
        return float(np.mean(mask)) if len(mask) else float("nan")

    return {"threshold": round(float(threshold), 3), "accuracy": rate(pred == y),
            "barred_precision": rate(y[pred == 1] == 1), "barred_recall": rate(pred[y == 1] == 1),
            "unbarred_recall": rate(pred[y == 0] == 0),
            "size_matched_accuracy": rate(pred[size_matched] == y[size_matched])}


def measure_validation(out_dir, config, unbarred_recall, model=None):
    """Validation figures of a model (default: the run's best checkpoint), at its threshold and the strict one."""
    import pandas as pd

    from deepscope.galaxy.apparent_size import size_matched_indices
    from deepscope.galaxy.evaluate import evaluate_galaxy

    Path(out_dir).mkdir(parents=True, exist_ok=True)
    labels = validation_labels(out_dir, config)
    metrics = evaluate_galaxy(labels, Path(out_dir) / "val_eval", model=model or out_dir, split="val",
                              progress=False, hoyle=HOYLE, stripe82=STRIPE82)
    predictions = pd.read_csv(Path(out_dir) / "val_eval" / "predictions.csv")
    y, p, sizes = predictions["barred"].to_numpy(), predictions["p_1"].to_numpy(), predictions["bright_pixels"]
    matched = size_matched_indices(sizes.to_numpy(), y)
    unbarred = np.sort(p[y == 0])
    # Lowest threshold with at least the wanted share of unbarred galaxies below it.
    strict = unbarred[min(len(unbarred) - 1, int(np.ceil(unbarred_recall * len(unbarred))) - 1)] + 1e-6
    hoyle = metrics["external"]["hoyle"]
    return {"val_roc_auc": metrics["all"]["roc_auc"], "val_size_matched_roc_auc": metrics["size_matched"]["roc_auc"],
            "n_val": metrics["all"]["n"], "n_size_matched": metrics["size_matched"]["n"],
            "hoyle_n": hoyle["n_confirmed"], "hoyle_matched_accuracy": hoyle["matched_accuracy"],
            "at_trained_threshold": {**figures(y, p, metrics["threshold"], sizes, matched),
                                     "hoyle_recall": hoyle["confirmed_recall"]},
            "at_unbarred_recall_threshold": figures(y, p, strict, sizes, matched)}


class SoftCutoutDataset(CutoutDataset):
    """CutoutDataset whose targets also carry class probabilities (``soft``) to train against."""

    def __init__(self, images, labels, weights, soft):
        import torch

        super().__init__(images, labels, weights, augment=True)
        self.soft = torch.as_tensor(soft, dtype=torch.float32)

    def __getitem__(self, index):
        image, target = super().__getitem__(index)
        return image, {**target, "soft": self.soft[index]}


def soft_cross_entropy(outputs, targets):
    """deepscope.galaxy.train.cross_entropy against ``soft`` probabilities where given."""
    import torch.nn.functional as F

    losses = F.cross_entropy(outputs, targets.get("soft", targets["label"]), reduction="none")
    return (losses * targets["weight"]).sum() / targets["weight"].sum()


def train_variant(labels_path, run_dir, config, evidence=None, teacher=None, teacher_weight=0.5, progress=False):
    """The removed `galaxy train --hoyle/--stripe82/--teacher`: evidence weights and soft targets, a teacher's
    probabilities blended in, on the training rows only; validation keeps the catalogue labels."""
    from deepscope.galaxy.apparent_size import size_balancing_weights
    from deepscope.galaxy.crossmatch import sample_positions
    from deepscope.galaxy.train import fit_galaxy, read_training_data
    from distillation import blend_targets, check_teacher, teacher_probabilities
    from evidence import balanced_weights, evidence_targets

    data = read_training_data(labels_path, run_dir, "barred", config, progress=progress)
    images, labels, sizes = data.train_images, data.train_labels, data.train_sizes
    base, soft, counts, extra = None, None, {}, {}
    taught = None
    if teacher is not None:
        model = check_teacher(teacher, teacher_weight, data.class_names, data.input_size)
        taught = teacher_probabilities(model, images)
        extra["teacher"] = {"model": str(teacher), "weight": teacher_weight}
    if evidence is not None:
        ra, dec = sample_positions(data.train_rows, str(labels_path))
        base, p_bar, counts = evidence_targets(ra, dec, labels, sizes, evidence)
        keep = base > 0  # galaxies the evidence rules out (edge-on) are not trained on
        images, labels, sizes, base, p_bar = images[keep], labels[keep], sizes[keep], base[keep], p_bar[keep]
        soft = np.stack([1 - p_bar, p_bar], axis=1)
        taught = None if taught is None else taught[keep]
        extra["evidence"] = evidence.describe()
    if taught is not None:
        labelled = soft if soft is not None else np.eye(len(data.class_names), dtype=np.float32)[labels]
        soft = blend_targets(labelled, taught, teacher_weight)
    weights = size_balancing_weights(sizes, labels) if base is None else balanced_weights(sizes, labels, base)
    train_set = (CutoutDataset(images, labels, weights, augment=True) if soft is None
                 else SoftCutoutDataset(images, labels, weights, soft))
    summary = fit_galaxy(data, train_set, run_dir, config, progress=progress, loss=soft_cross_entropy, extra=extra)
    return {**summary, "evidence": counts}


def train(args):
    from deepscope.config import TrainConfig
    from deepscope.galaxy.train import DEFAULT_CONFIG
    from evidence import TrainingEvidence

    config = TrainConfig(**{**DEFAULT_CONFIG.__dict__, "model": args.arch, "epochs": args.epochs,
                            "patience": args.patience, "lr": args.lr, "threads": args.threads})
    evidence = None
    if args.evidence:
        evidence = TrainingEvidence(hoyle=HOYLE, stripe82=STRIPE82, confirmed_weight=args.confirmed_weight,
                                    doubtful_weight=args.doubtful_weight)
    start = time.perf_counter()
    summary = train_variant(LABELS if args.labels is None else args.labels, args.out, config, evidence,
                            args.teacher, args.teacher_weight)
    wall = time.perf_counter() - start
    result = {"arch": args.arch, "evidence": bool(args.evidence), "teacher": args.teacher,
              "teacher_weight": args.teacher_weight, "confirmed_weight": args.confirmed_weight,
              "doubtful_weight": args.doubtful_weight, "epochs": args.epochs, "lr": args.lr,
              "train_wall_s": round(wall, 1), "best_epoch": summary["best_epoch"],
              "epochs_run": summary["epochs_run"], "best_val_auc_early_stopping": summary["best_val_score"],
              "evidence_counts": summary["evidence"]}
    if args.labels is None:
        result.update(measure_validation(args.out, config, args.unbarred_recall))
    (Path(args.out) / "validation_figures.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def speed(n_rounds=8, batch=256):
    import copy

    import torch

    from deepscope.core.speed import prepare_for_inference
    from deepscope.registry import create_model

    torch.set_num_threads(1)
    x = torch.rand(batch, 3, 64, 64).contiguous(memory_format=torch.channels_last)
    nets = {name: prepare_for_inference(copy.deepcopy(create_model(name).eval())) for name in ("barnet", "barnet_fast")}
    best = dict.fromkeys(nets, float("inf"))
    with torch.inference_mode():
        for _ in range(n_rounds):
            for name, net in nets.items():
                start = time.perf_counter()
                net(x)
                best[name] = min(best[name], time.perf_counter() - start)
    for name in nets:
        print(f"{name}: {batch / best[name]:.0f} cutouts/s on one core (best of {n_rounds} batches of {batch})")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", help="run directory")
    parser.add_argument("--labels", help="another labels table (a smoke run: trains, measures nothing)")
    parser.add_argument("--arch", default="barnet_fast")
    parser.add_argument("--evidence", action="store_true", help="train with Hoyle and Stripe 82 evidence")
    parser.add_argument("--confirmed-weight", type=float, default=3.0)
    parser.add_argument("--doubtful-weight", type=float, default=0.5)
    parser.add_argument("--teacher", help="a trained galaxy network whose probabilities join the targets")
    parser.add_argument("--teacher-weight", type=float, default=0.5)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--patience", type=int, default=30)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--unbarred-recall", type=float, default=0.9609,
                        help="validation unbarred recall the second threshold keeps (default: the shipped model's)")
    parser.add_argument("--speed", action="store_true", help="time the networks only")
    parser.add_argument("--measure", metavar="MODEL",
                        help="only measure this model (e.g. galaxy_bars) on the validation rows, into --out")
    args = parser.parse_args()
    if args.speed:
        speed()
    elif args.measure:
        from deepscope.galaxy.train import DEFAULT_CONFIG

        print(json.dumps(measure_validation(args.out, DEFAULT_CONFIG, args.unbarred_recall, args.measure), indent=2))
    else:
        train(args)


if __name__ == "__main__":
    main()
