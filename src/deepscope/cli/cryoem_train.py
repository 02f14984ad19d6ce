"""Train a particle-picking U-Net on micrographs with particle coordinates.

Micrographs (MRC, TIFF, JPEG, PNG) are paired with coordinate files
(STAR, BOX, CryoPPP CSV, cryoSPARC .cs) by file stem, downsampled so the
particle is --working-diameter pixels across, and patches are drawn from
them. --target joint also learns CASSPER's protein/ice/background/carbon
regions from --labels, so that picks on ice or carbon are refused.
Validation micrographs (--val) decide early stopping and the pick threshold.

Example (EMPIAR-10017, the shipped model's split; coordinates are in the
JPEG frame, CASSPER labels are upside down):

  deepscope cryoem train --micrographs ../shared/data/cryoem/empiar10017/micrographs \\
      --coords ../shared/data/cryoem/empiar10017/particles --diameter 108 \\
      --labels ../shared/data/cryoem/empiar10017/cassper_labels --labels-flip-y \\
      --exclude Falcon_2012_06_12-14_33_35_0 --val Falcon_2012_06_12-17_02_43_0 \\
      --epochs 2 --out runs/cryoem_try
"""


def add_args(parser):
    parser.add_argument("--micrographs", nargs="+", required=True, help="micrograph files or directories")
    parser.add_argument("--coords", required=True, help="directory of particle-centre files named like the micrographs")
    parser.add_argument("--diameter", type=float, required=True, help="particle diameter in micrograph pixels")
    parser.add_argument("--out", required=True, help="run directory (checkpoints, history, config)")
    parser.add_argument("--target", choices=["disks", "regions", "joint"], default=None,
                        help="heads to train (default: joint with --labels, else disks)")
    parser.add_argument("--labels", help="directory of CASSPER region label PNGs")
    parser.add_argument("--coords-flip-y", action="store_true", help="coordinates are upside down (y -> H-1-y)")
    parser.add_argument("--labels-flip-y", action="store_true", help="label images are upside down")
    parser.add_argument("--exclude", nargs="*", default=[], metavar="STEM",
                        help="micrographs to leave out entirely (your test set)")
    parser.add_argument("--val", nargs="*", default=None, metavar="STEM", help="validation micrographs")
    parser.add_argument("--working-diameter", type=float, default=None, help="particle size the network sees (px)")
    parser.add_argument("--width", type=int, default=16, help="U-Net channels at full working resolution")
    parser.add_argument("--depth", type=int, default=3, help="U-Net poolings")
    parser.add_argument("--patches", type=int, default=256, help="training patches per epoch")
    parser.add_argument("--augment", type=int, choices=[1, 2, 4, 8], default=1,
                        help="test-time views (rotations/flips) averaged when picking; the threshold is tuned for them")
    parser.add_argument("--enhance", choices=["auto", "on", "off"], default="auto",
                        help="contrast enhancement (auto: on for MRC/TIFF)")
    parser.add_argument("--config", help="YAML file of training settings")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--patience", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")


def main(args):
    from pathlib import Path

    from deepscope.cli.train_options import is_primary_process
    from deepscope.config import TrainConfig, prepare_run_dir, resolve_config
    from deepscope.core.files import check_writable, collect_inputs
    from deepscope.cryoem.io import MICROGRAPH_SUFFIXES
    from deepscope.cryoem.task import TARGETS, WORKING_DIAMETER, train_picker
    from deepscope.errors import InputError

    if args.diameter <= 0:
        msg = f"--diameter must be positive, got {args.diameter}"
        raise InputError(msg)
    primary = is_primary_process()
    target = args.target or ("joint" if args.labels else "disks")
    defaults = TrainConfig(model=TARGETS[target], epochs=20, batch_size=16, lr=2e-3, patience=5, threads=2)
    config = resolve_config(defaults, args.config, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                            patience=args.patience, seed=args.seed, threads=args.threads)
    config.model_kwargs = {"width": args.width, "depth": args.depth, **config.model_kwargs}
    micrographs = collect_inputs(args.micrographs, MICROGRAPH_SUFFIXES)
    run_dir = check_writable(args.out, is_dir=True)
    working = args.working_diameter or WORKING_DIAMETER
    prepare_run_dir(run_dir, config, {
        "target": target, "micrographs": [str(p) for p in micrographs], "coords": args.coords,
        "labels": args.labels, "diameter": args.diameter, "working_diameter": working,
        "excluded": list(args.exclude), "val": args.val,
    })
    result = train_picker(
        micrographs, Path(args.coords), args.diameter, run_dir, config, target=target,
        labels_dir=args.labels, coords_flip_y=args.coords_flip_y, labels_flip_y=args.labels_flip_y,
        val_names=args.val, working_diameter=working, patches_per_epoch=args.patches,
        enhance=args.enhance, resume=args.resume, exclude=args.exclude, augment=args.augment,
    )
    if not primary:
        return
    tuning = result["tuning"]
    print(f"trained on {len(result['train'])} micrographs, validated on {', '.join(result['val'])}")
    print(f"best epoch {result['fit'].best_epoch}: validation F1 {tuning['f1']:.3f} "
          f"at threshold {tuning['threshold']:.2f} (NMS {tuning['nms_fraction']} x diameter)")
    print(f"checkpoint: {run_dir / 'best.pt'}")
